//! Embedded migrations: `(version, name, SQL)`, applied in order. Never edit a released migration; add one.
//! Numbers are reserved per area so parallel work does not collide: 1–99 core, 100–199 JMA,
//! 200–299 LINE, 300–399 residents/places/disaster/delivery, 400–499 plows, 500–599 console.

pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "core", include_str!("migrations/0001_core.sql")),
    (
        100,
        "jma_feed",
        include_str!("migrations/0100_jma_feed.sql"),
    ),
    (200, "line", include_str!("migrations/0200_line.sql")),
    (
        201,
        "richmenu_variants",
        include_str!("migrations/0201_richmenu_variants.sql"),
    ),
    (
        300,
        "places_residents",
        include_str!("migrations/0300_places_residents.sql"),
    ),
    (
        310,
        "resident_topics",
        include_str!("migrations/0310_resident_topics.sql"),
    ),
    (
        330,
        "disaster_delivery",
        include_str!("migrations/0330_disaster_delivery.sql"),
    ),
    (
        340,
        "disaster_runtime",
        include_str!("migrations/0340_disaster_runtime.sql"),
    ),
    (
        360,
        "manual_alerts",
        include_str!("migrations/0360_manual_alerts.sql"),
    ),
    (370, "safety", include_str!("migrations/0370_safety.sql")),
    (400, "plow", include_str!("migrations/0400_plow.sql")),
    (
        401,
        "plow_notice_topics",
        include_str!("migrations/0401_plow_notice_topics.sql"),
    ),
    (500, "console", include_str!("migrations/0500_console.sql")),
    (
        501,
        "audit_seal",
        include_str!("migrations/0501_audit_seal.sql"),
    ),
    (
        502,
        "console_roles",
        include_str!("migrations/0502_console_roles.sql"),
    ),
];
