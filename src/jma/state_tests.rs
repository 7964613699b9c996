//! Every active-state rule has a test here, on hand-built reports shaped like the real telegrams
//! (VPWW54 / VPWW55 / VPWW56 / VXWW50 municipal blocks).

use super::*;
use crate::jma::report::{Area, Control, Head, Kind, WarningBlock, WarningItem};

/// A tiny test table with the codes these tests use (facts from research notes §3; the real table is
/// `jma::codes`).
pub(crate) fn table(data_type: &str, code: &str) -> Option<KindClass> {
    let c = |p: &str, s: Severity, l: Option<u8>| {
        Some(KindClass {
            phenomenon: p.into(),
            severity: s,
            level: l,
            name: None,
        })
    };
    use Severity::*;
    if data_type == "VXWW50" {
        return match code {
            "3" => c("土砂災害", Danger, Some(4)),
            _ => None,
        };
    }
    match code {
        "03" => c("大雨", Warning, Some(3)),
        "10" => c("大雨", Advisory, Some(2)),
        "33" => c("大雨", Emergency, Some(5)),
        "43" => c("大雨", Danger, Some(4)),
        "04" => c("洪水", Warning, Some(3)),
        "18" => c("洪水", Advisory, Some(2)),
        "05" => c("暴風", Warning, None),
        "15" => c("強風", Advisory, None),
        "09" => c("土砂災害", Warning, Some(3)),
        "29" => c("土砂災害", Advisory, Some(2)),
        "49" => c("土砂災害", Danger, Some(4)),
        "39" => c("土砂災害", Emergency, Some(5)),
        _ => None,
    }
}

pub(crate) fn t(hhmm: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(&format!("2026-07-01T{hhmm}:00+09:00")).unwrap()
}

/// One municipality's Item: (code, name, [(kind code, status)]).
pub(crate) type Muni<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

pub(crate) fn report(
    data_type: &str,
    status: DocStatus,
    info_type: InfoType,
    at: &str,
    munis: &[Muni<'_>],
) -> Report {
    let block_type = if data_type == "VXWW50" {
        "土砂災害警戒情報"
    } else {
        "気象警報・注意報（市町村等）"
    };
    let items = munis
        .iter()
        .map(|(code, name, kinds)| WarningItem {
            areas: vec![Area {
                code: code.to_string(),
                name: name.to_string(),
            }],
            kinds: kinds
                .iter()
                .map(|(c, s)| Kind {
                    code: c.to_string(),
                    name: format!("kind{c}"),
                    status: s.to_string(),
                })
                .collect(),
        })
        .collect();
    Report {
        data_type: data_type.into(),
        control: Control {
            title: "test".into(),
            datetime: None,
            status,
            editorial_office: "山形地方気象台".into(),
            publishing_office: "山形地方気象台".into(),
        },
        head: Head {
            title: "山形県気象警報・注意報".into(),
            report_datetime: Some(t(at)),
            target_datetime: None,
            event_id: String::new(),
            info_type,
            serial: String::new(),
            info_kind: "気象警報・注意報".into(),
            info_kind_version: "1.2_2".into(),
            headline: String::new(),
        },
        details: Default::default(),
        warnings: vec![
            // A coarser block with a 6-digit area that must not count.
            WarningBlock {
                block_type: "気象警報・注意報（一次細分区域等）".into(),
                items: vec![WarningItem {
                    areas: vec![Area {
                        code: "060010".into(),
                        name: "村山".into(),
                    }],
                    kinds: vec![Kind {
                        code: "33".into(),
                        name: "大雨特別警報".into(),
                        status: "発表".into(),
                    }],
                }],
            },
            WarningBlock {
                block_type: block_type.into(),
                items,
            },
        ],
    }
}

const YAMAGATA: &str = "0620100";
const TENDO: &str = "0621000";

fn issue(data_type: &str, at: &str, munis: &[Muni<'_>]) -> Report {
    report(data_type, DocStatus::Normal, InfoType::Issue, at, munis)
}

fn apply(s: &mut States, r: &Report) -> ApplyOutcome {
    s.apply(r, &table).1
}

fn changes(o: &ApplyOutcome) -> Vec<(String, String, Change)> {
    o.events
        .iter()
        .map(|e| (e.municipality.clone(), e.phenomenon.clone(), e.change))
        .collect()
}

fn ev(m: &str, p: &str, c: Change) -> (String, String, Change) {
    (m.into(), p.into(), c)
}

#[test]
fn a_first_warning_is_issued_with_the_report_time() {
    let mut s = States::default();
    let o = apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:00",
            &[
                (YAMAGATA, "山形市", &[("03", "発表"), ("15", "発表")]),
                (TENDO, "天童市", &[]),
            ],
        ),
    );
    assert_eq!(o.disposition, Disposition::Applied);
    assert_eq!(
        changes(&o),
        vec![
            ev(YAMAGATA, "大雨", Change::Issued),
            ev(YAMAGATA, "強風", Change::Issued)
        ]
    );
    let w = s.real.get(YAMAGATA, "大雨").unwrap();
    assert_eq!(
        (w.code.as_str(), w.severity, w.level),
        ("03", Severity::Warning, Some(3))
    );
    assert_eq!(w.active_since, t("10:00"));
    assert_eq!(o.events[0].report.report_datetime, t("10:00"));
    assert!(s.real.active(TENDO).is_empty());
    assert_eq!(s.real.munis[YAMAGATA].name, "山形市");
}

#[test]
fn a_continuing_warning_produces_no_event_and_keeps_its_issue_time() {
    let mut s = States::default();
    apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:00",
            &[(YAMAGATA, "山形市", &[("03", "発表")])],
        ),
    );
    let o = apply(
        &mut s,
        &issue(
            "VPWW54",
            "11:00",
            &[(YAMAGATA, "山形市", &[("03", "継続")])],
        ),
    );
    assert_eq!(o.disposition, Disposition::Applied);
    assert!(o.events.is_empty(), "{:?}", o.events);
    let w = s.real.get(YAMAGATA, "大雨").unwrap();
    assert_eq!(w.active_since, t("10:00"));
    assert_eq!(w.report_datetime, t("11:00"));
}

#[test]
fn a_special_warning_escalates_and_going_back_to_a_warning_is_a_downgrade() {
    let mut s = States::default();
    apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:00",
            &[(YAMAGATA, "山形市", &[("03", "発表")])],
        ),
    );
    let o = apply(
        &mut s,
        &issue(
            "VPWW54",
            "11:00",
            &[(YAMAGATA, "山形市", &[("33", "発表")])],
        ),
    );
    assert_eq!(changes(&o), vec![ev(YAMAGATA, "大雨", Change::Escalated)]);
    assert_eq!(o.events[0].before.as_ref().unwrap().code, "03");
    assert_eq!(o.events[0].after.as_ref().unwrap().code, "33");
    let o = apply(
        &mut s,
        &issue(
            "VPWW54",
            "12:00",
            &[(YAMAGATA, "山形市", &[("03", "特別警報から警報")])],
        ),
    );
    assert_eq!(changes(&o), vec![ev(YAMAGATA, "大雨", Change::Downgraded)]);
    let w = s.real.get(YAMAGATA, "大雨").unwrap();
    assert_eq!(w.active_since, t("10:00"), "still the same episode");
    assert_eq!(w.kind_since, t("12:00"));
}

#[test]
fn a_lifted_kind_is_reported_once_and_leaves_nothing_active() {
    let mut s = States::default();
    apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:00",
            &[(YAMAGATA, "山形市", &[("03", "発表"), ("15", "発表")])],
        ),
    );
    let o = apply(
        &mut s,
        &issue(
            "VPWW54",
            "11:00",
            &[(YAMAGATA, "山形市", &[("03", "解除"), ("15", "継続")])],
        ),
    );
    assert_eq!(changes(&o), vec![ev(YAMAGATA, "大雨", Change::Lifted)]);
    assert!(o.events[0].after.is_none());
    // Then "nothing in force" (no Code at all).
    let o = apply(
        &mut s,
        &issue(
            "VPWW54",
            "12:00",
            &[(YAMAGATA, "山形市", &[("", "発表警報・注意報はなし")])],
        ),
    );
    assert_eq!(changes(&o), vec![ev(YAMAGATA, "強風", Change::Lifted)]);
    assert!(s.real.active(YAMAGATA).is_empty());
    assert!(o.unknown_codes.is_empty());
}

#[test]
fn a_kind_missing_from_a_listed_municipality_is_no_longer_in_force() {
    let mut s = States::default();
    apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:00",
            &[(YAMAGATA, "山形市", &[("05", "発表")])],
        ),
    );
    let o = apply(
        &mut s,
        &issue("VPWW54", "11:00", &[(YAMAGATA, "山形市", &[])]),
    );
    assert_eq!(changes(&o), vec![ev(YAMAGATA, "暴風", Change::Lifted)]);
}

#[test]
fn a_municipality_the_telegram_does_not_list_is_untouched() {
    let mut s = States::default();
    apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:00",
            &[(YAMAGATA, "山形市", &[("03", "発表")])],
        ),
    );
    let o = apply(
        &mut s,
        &issue("VPWW54", "11:00", &[(TENDO, "天童市", &[("10", "発表")])]),
    );
    assert_eq!(changes(&o), vec![ev(TENDO, "大雨", Change::Issued)]);
    assert_eq!(s.real.get(YAMAGATA, "大雨").unwrap().code, "03");
}

#[test]
fn only_the_municipal_block_drives_the_state() {
    // The helper adds a 一次細分 block with 大雨特別警報 for 060010; it must create nothing.
    let mut s = States::default();
    let o = apply(
        &mut s,
        &issue("VPWW54", "10:00", &[(YAMAGATA, "山形市", &[])]),
    );
    assert!(o.events.is_empty());
    assert!(!s.real.munis.contains_key("060010"));
}

#[test]
fn a_repeated_document_is_applied_once() {
    let mut s = States::default();
    let r = issue(
        "VPWW54",
        "10:00",
        &[(YAMAGATA, "山形市", &[("03", "発表")])],
    );
    assert_eq!(apply(&mut s, &r).events.len(), 1);
    let before = s.clone();
    for _ in 0..3 {
        let o = apply(&mut s, &r);
        assert_eq!(o.disposition, Disposition::Duplicate);
        assert!(o.events.is_empty());
    }
    assert_eq!(s, before);
}

#[test]
fn an_older_report_arriving_late_does_not_roll_the_state_back() {
    let mut s = States::default();
    apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:00",
            &[(YAMAGATA, "山形市", &[("03", "発表")])],
        ),
    );
    apply(
        &mut s,
        &issue(
            "VPWW54",
            "11:00",
            &[(YAMAGATA, "山形市", &[("03", "解除")])],
        ),
    );
    // A catch-up from the long feed delivers the 10:30 report after the 11:00 one.
    let o = apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:30",
            &[(YAMAGATA, "山形市", &[("33", "発表")])],
        ),
    );
    assert!(o.events.is_empty());
    assert_eq!(o.stale, vec![YAMAGATA.to_string()]);
    assert!(s.real.get(YAMAGATA, "大雨").is_none());
}

#[test]
fn vpww53_and_vpww54_twins_give_one_event() {
    let mut s = States::default();
    let a = apply(
        &mut s,
        &issue(
            "VPWW53",
            "10:00",
            &[(YAMAGATA, "山形市", &[("33", "発表")])],
        ),
    );
    let b = apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:00",
            &[(YAMAGATA, "山形市", &[("33", "発表")])],
        ),
    );
    assert_eq!(changes(&a), vec![ev(YAMAGATA, "大雨", Change::Issued)]);
    assert_eq!(b.disposition, Disposition::Applied);
    assert!(b.events.is_empty());
}

#[test]
fn a_correction_replaces_the_report_and_is_reported_as_corrected() {
    let mut s = States::default();
    apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:00",
            &[(YAMAGATA, "山形市", &[("33", "発表")])],
        ),
    );
    let c = report(
        "VPWW54",
        DocStatus::Normal,
        InfoType::Correction,
        "10:00",
        &[(YAMAGATA, "山形市", &[("03", "発表")])],
    );
    let o = apply(&mut s, &c);
    assert_eq!(o.disposition, Disposition::Applied);
    assert_eq!(changes(&o), vec![ev(YAMAGATA, "大雨", Change::Corrected)]);
    assert_eq!(o.events[0].after.as_ref().unwrap().code, "03");
    assert_eq!(s.real.get(YAMAGATA, "大雨").unwrap().code, "03");
    // A correction that removes the warning entirely is also a correction, not a 解除.
    let c2 = report(
        "VPWW54",
        DocStatus::Normal,
        InfoType::Correction,
        "10:01",
        &[(YAMAGATA, "山形市", &[])],
    );
    assert_eq!(
        changes(&apply(&mut s, &c2)),
        vec![ev(YAMAGATA, "大雨", Change::Corrected)]
    );
}

#[test]
fn a_cancellation_restores_the_state_before_the_cancelled_report() {
    let mut s = States::default();
    apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:00",
            &[(YAMAGATA, "山形市", &[("03", "発表")])],
        ),
    );
    apply(
        &mut s,
        &issue(
            "VPWW54",
            "11:00",
            &[
                (YAMAGATA, "山形市", &[("33", "発表")]),
                (TENDO, "天童市", &[("10", "発表")]),
            ],
        ),
    );
    let cancel = report("VPWW54", DocStatus::Normal, InfoType::Cancel, "11:05", &[]);
    let o = apply(&mut s, &cancel);
    assert_eq!(o.disposition, Disposition::Applied);
    assert_eq!(
        changes(&o),
        vec![
            ev(YAMAGATA, "大雨", Change::Cancelled),
            ev(TENDO, "大雨", Change::Cancelled)
        ]
    );
    assert_eq!(s.real.get(YAMAGATA, "大雨").unwrap().code, "03");
    assert!(s.real.get(TENDO, "大雨").is_none());
    // Cancelling again changes nothing (the restored layer is from 10:00 and has no history).
    let again = report("VPWW54", DocStatus::Normal, InfoType::Cancel, "11:06", &[]);
    let o = apply(&mut s, &again);
    assert_eq!(changes(&o), vec![ev(YAMAGATA, "大雨", Change::Cancelled)]);
    assert!(s.real.active(YAMAGATA).is_empty());
}

#[test]
fn a_cancellation_of_another_office_or_type_changes_nothing() {
    let mut s = States::default();
    apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:00",
            &[(YAMAGATA, "山形市", &[("03", "発表")])],
        ),
    );
    let mut cancel = report("VPWW54", DocStatus::Normal, InfoType::Cancel, "11:05", &[]);
    cancel.control.publishing_office = "仙台管区気象台".into();
    assert!(apply(&mut s, &cancel).events.is_empty());
    let cancel = report("VXWW50", DocStatus::Normal, InfoType::Cancel, "11:05", &[]);
    assert!(apply(&mut s, &cancel).events.is_empty());
    assert_eq!(s.real.get(YAMAGATA, "大雨").unwrap().code, "03");
}

#[test]
fn old_and_new_telegrams_of_the_same_warning_give_one_state_and_no_double_events() {
    let mut s = States::default();
    // R06 first (the new telegram is published first), legacy twin a few minutes later.
    let o = apply(
        &mut s,
        &issue(
            "VPWW55",
            "10:00",
            &[(YAMAGATA, "山形市", &[("03", "発表")])],
        ),
    );
    assert_eq!(changes(&o), vec![ev(YAMAGATA, "大雨", Change::Issued)]);
    let o = apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:03",
            &[(YAMAGATA, "山形市", &[("03", "発表")])],
        ),
    );
    assert!(o.events.is_empty(), "{:?}", o.events);
    // R06 escalates to レベル４大雨危険警報 (43); the legacy telegram can only say 大雨警報 (03).
    let o = apply(
        &mut s,
        &issue(
            "VPWW55",
            "11:00",
            &[(YAMAGATA, "山形市", &[("43", "発表")])],
        ),
    );
    assert_eq!(changes(&o), vec![ev(YAMAGATA, "大雨", Change::Escalated)]);
    let o = apply(
        &mut s,
        &issue(
            "VPWW54",
            "11:04",
            &[(YAMAGATA, "山形市", &[("03", "継続")])],
        ),
    );
    assert!(
        o.events.is_empty(),
        "legacy 警報 must not downgrade the R06 危険警報: {:?}",
        o.events
    );
    assert_eq!(s.real.get(YAMAGATA, "大雨").unwrap().code, "43");
    // Lifting: R06 lifts, the lagging legacy still says 03 — R06 is authoritative, so one 解除 only.
    let o = apply(
        &mut s,
        &issue(
            "VPWW55",
            "12:00",
            &[(YAMAGATA, "山形市", &[("43", "解除")])],
        ),
    );
    assert_eq!(changes(&o), vec![ev(YAMAGATA, "大雨", Change::Lifted)]);
    let o = apply(
        &mut s,
        &issue(
            "VPWW54",
            "12:03",
            &[(YAMAGATA, "山形市", &[("03", "解除")])],
        ),
    );
    assert!(o.events.is_empty());
}

#[test]
fn legacy_first_then_the_r06_takeover_reports_only_the_real_difference() {
    let mut s = States::default();
    apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:00",
            &[(YAMAGATA, "山形市", &[("03", "発表")])],
        ),
    );
    // Same warning through R06: no event. Then R06 says 危険警報 while legacy lags.
    let o = apply(
        &mut s,
        &issue(
            "VPWW55",
            "10:02",
            &[(YAMAGATA, "山形市", &[("03", "発表")])],
        ),
    );
    assert!(o.events.is_empty(), "{:?}", o.events);
    assert_eq!(
        s.real.get(YAMAGATA, "大雨").unwrap().active_since,
        t("10:00")
    );
    let o = apply(
        &mut s,
        &issue(
            "VPWW55",
            "10:30",
            &[(YAMAGATA, "山形市", &[("43", "発表")])],
        ),
    );
    assert_eq!(changes(&o), vec![ev(YAMAGATA, "大雨", Change::Escalated)]);
}

#[test]
fn an_r06_telegram_with_nothing_in_force_overrides_a_lagging_legacy_warning() {
    let mut s = States::default();
    apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:00",
            &[(YAMAGATA, "山形市", &[("03", "発表")])],
        ),
    );
    let o = apply(
        &mut s,
        &issue("VPWW55", "10:30", &[(YAMAGATA, "山形市", &[])]),
    );
    assert_eq!(changes(&o), vec![ev(YAMAGATA, "大雨", Change::Lifted)]);
}

#[test]
fn flood_stays_legacy_driven_after_the_r06_takeover() {
    let mut s = States::default();
    apply(
        &mut s,
        &issue(
            "VPWW55",
            "10:00",
            &[(YAMAGATA, "山形市", &[("03", "発表")])],
        ),
    );
    let o = apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:03",
            &[(YAMAGATA, "山形市", &[("03", "発表"), ("04", "発表")])],
        ),
    );
    assert_eq!(changes(&o), vec![ev(YAMAGATA, "洪水", Change::Issued)]);
}

#[test]
fn vxww50_and_vpww56_landslide_danger_are_one_state() {
    let mut s = States::default();
    let o = apply(
        &mut s,
        &issue(
            "VXWW50",
            "10:00",
            &[
                (YAMAGATA, "山形市", &[("3", "発表")]),
                (TENDO, "天童市", &[("0", "なし")]),
            ],
        ),
    );
    assert_eq!(changes(&o), vec![ev(YAMAGATA, "土砂災害", Change::Issued)]);
    let o = apply(
        &mut s,
        &issue(
            "VPWW56",
            "10:01",
            &[
                (YAMAGATA, "山形市", &[("49", "発表")]),
                (TENDO, "天童市", &[]),
            ],
        ),
    );
    assert!(
        o.events.is_empty(),
        "same level-4 state from both telegrams: {:?}",
        o.events
    );
    assert!(o.unknown_codes.is_empty());
    let w = s.real.get(YAMAGATA, "土砂災害").unwrap();
    assert_eq!(
        (w.severity, w.level, w.active_since),
        (Severity::Danger, Some(4), t("10:00"))
    );
    // The VXWW50 解除 lagging behind changes nothing; the VPWW56 one lifts.
    assert!(apply(
        &mut s,
        &issue("VXWW50", "11:02", &[(YAMAGATA, "山形市", &[("1", "解除")])])
    )
    .events
    .is_empty());
    let o = apply(
        &mut s,
        &issue(
            "VPWW56",
            "11:00",
            &[(YAMAGATA, "山形市", &[("29", "警報から注意報")])],
        ),
    );
    assert_eq!(
        changes(&o),
        vec![ev(YAMAGATA, "土砂災害", Change::Downgraded)]
    );
}

#[test]
fn drill_documents_change_only_the_drill_state_and_test_documents_nothing() {
    let mut s = States::default();
    let drill = report(
        "VPWW54",
        DocStatus::Drill,
        InfoType::Issue,
        "10:00",
        &[(YAMAGATA, "山形市", &[("33", "発表")])],
    );
    let (scope, o) = s.apply(&drill, &table);
    assert_eq!(scope, Some(Scope::Drill));
    assert_eq!(o.events[0].scope, Scope::Drill);
    assert!(s.real.munis.is_empty());
    assert_eq!(s.drill.get(YAMAGATA, "大雨").unwrap().code, "33");
    let test = report(
        "VPWW54",
        DocStatus::Test,
        InfoType::Issue,
        "10:00",
        &[(YAMAGATA, "山形市", &[("33", "発表")])],
    );
    let (scope, o) = s.apply(&test, &table);
    assert_eq!(scope, None);
    assert_eq!(
        o.disposition,
        Disposition::Ignored(IgnoreReason::TestDocument)
    );
    assert!(s.real.munis.is_empty());
    // A real document with the same times is not a "duplicate" of the drill one.
    let real = issue(
        "VPWW54",
        "10:00",
        &[(YAMAGATA, "山形市", &[("03", "発表")])],
    );
    assert_eq!(
        changes(&apply(&mut s, &real)),
        vec![ev(YAMAGATA, "大雨", Change::Issued)]
    );
    assert_eq!(s.drill.get(YAMAGATA, "大雨").unwrap().code, "33");
}

#[test]
fn unknown_codes_and_statuses_are_reported_not_guessed() {
    let mut s = States::default();
    let o = apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:00",
            &[(YAMAGATA, "山形市", &[("99", "発表"), ("03", "謎の状態")])],
        ),
    );
    assert_eq!(
        o.unknown_codes,
        vec![("VPWW54".to_string(), "99".to_string())]
    );
    assert_eq!(o.notes.len(), 1, "{:?}", o.notes);
    assert!(o.notes[0].contains("謎の状態"));
    // The unknown status is treated as in force: a missed alert is the worse error.
    assert_eq!(s.real.get(YAMAGATA, "大雨").unwrap().code, "03");
}

#[test]
fn a_report_without_municipal_warnings_is_ignored() {
    let mut s = States::default();
    let mut r = issue("VXSE53", "10:00", &[]);
    r.warnings.clear();
    let o = apply(&mut s, &r);
    assert_eq!(
        o.disposition,
        Disposition::Ignored(IgnoreReason::NoMunicipalState)
    );
}

#[test]
fn the_state_survives_a_serde_round_trip_and_continues_identically() {
    let mut s = States::default();
    apply(
        &mut s,
        &issue(
            "VPWW55",
            "10:00",
            &[(YAMAGATA, "山形市", &[("03", "発表")])],
        ),
    );
    apply(
        &mut s,
        &issue(
            "VPWW54",
            "10:03",
            &[(YAMAGATA, "山形市", &[("03", "発表")])],
        ),
    );
    let json = serde_json::to_string(&s).unwrap();
    let mut restored: States = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, s);
    let next = issue(
        "VPWW55",
        "11:00",
        &[(YAMAGATA, "山形市", &[("43", "発表")])],
    );
    assert_eq!(apply(&mut restored, &next), apply(&mut s, &next));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn all_reports() -> Vec<Report> {
        // A storm: legacy and R06 telegrams, issue → escalate → downgrade → lift, two municipalities.
        vec![
            issue(
                "VPWW55",
                "10:00",
                &[
                    (YAMAGATA, "山形市", &[("03", "発表")]),
                    (TENDO, "天童市", &[]),
                ],
            ),
            issue(
                "VPWW54",
                "10:03",
                &[
                    (YAMAGATA, "山形市", &[("03", "発表"), ("04", "発表")]),
                    (TENDO, "天童市", &[("10", "発表")]),
                ],
            ),
            issue(
                "VPWW55",
                "11:00",
                &[
                    (YAMAGATA, "山形市", &[("43", "発表")]),
                    (TENDO, "天童市", &[("03", "発表")]),
                ],
            ),
            issue(
                "VPWW54",
                "11:04",
                &[
                    (YAMAGATA, "山形市", &[("03", "継続"), ("04", "継続")]),
                    (TENDO, "天童市", &[("03", "発表")]),
                ],
            ),
            issue(
                "VPWW55",
                "12:00",
                &[
                    (YAMAGATA, "山形市", &[("33", "発表")]),
                    (TENDO, "天童市", &[("03", "継続")]),
                ],
            ),
            issue(
                "VPWW55",
                "13:00",
                &[
                    (YAMAGATA, "山形市", &[("03", "特別警報から警報")]),
                    (TENDO, "天童市", &[("03", "解除")]),
                ],
            ),
            issue(
                "VPWW54",
                "13:02",
                &[
                    (YAMAGATA, "山形市", &[("03", "継続"), ("04", "解除")]),
                    (TENDO, "天童市", &[]),
                ],
            ),
        ]
    }

    fn effective_of(s: &States) -> Vec<(String, String, String)> {
        s.real
            .munis
            .iter()
            .flat_map(|(m, st)| {
                st.effective
                    .values()
                    .map(move |w| (m.clone(), w.phenomenon.clone(), w.code.clone()))
            })
            .collect()
    }

    proptest! {
        /// Feeds deliver in any order and repeat entries; the final state depends only on the set of reports.
        #[test]
        fn any_order_with_repeats_ends_in_the_same_state(order in proptest::collection::vec(0usize..7, 7..30)) {
            let reports = all_reports();
            let mut reference = States::default();
            for r in &reports { apply(&mut reference, r); }
            let mut s = States::default();
            for i in &order { apply(&mut s, &reports[*i]); }
            // Make sure every report was seen at least once.
            for r in &reports { apply(&mut s, r); }
            prop_assert_eq!(effective_of(&s), effective_of(&reference));
        }

        /// Applying in order, each (municipality, phenomenon) alternates issued/lifted correctly: never two
        /// "issued" without a "lifted" between them, whatever the repeats.
        #[test]
        fn repeats_never_produce_a_second_issue(repeats in proptest::collection::vec(0usize..3, 7)) {
            let mut s = States::default();
            let mut active: std::collections::BTreeSet<(String, String)> = Default::default();
            for (r, n) in all_reports().iter().zip(repeats) {
                for _ in 0..=n {
                    for e in apply(&mut s, r).events {
                        let k = (e.municipality.clone(), e.phenomenon.clone());
                        match e.change {
                            Change::Issued => prop_assert!(active.insert(k)),
                            Change::Lifted => prop_assert!(active.remove(&k)),
                            _ => prop_assert!(active.contains(&k)),
                        }
                    }
                }
            }
        }
    }
}
