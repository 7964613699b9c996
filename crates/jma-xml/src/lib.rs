//! JMA disaster-prevention XML (気象庁防災情報XML) → typed data, and JMA's code tables.
//!
//! Pure: no I/O, no clock, no async runtime. Feed polling, archiving and state live in the Sonae daemon
//! (`sonae::jma`), which re-exports these modules as `sonae::jma::{report, codes, area}`.
//!
//! | module | owns |
//! | --- | --- |
//! | [`report`] | [`report::parse`]: one JMA XML document → [`report::Report`] (Control, Head, every `Body/Warning` block, type-specific [`report::Details`]) |
//! | [`codes`] | warning kinds by code (old and 2026 names, 警戒レベル相当 per telegram family), 土砂災害警戒情報, 指定河川洪水予報, tsunami and 震度 codes |
//! | [`area`] | JMA 7-digit 市町村等 codes ↔ JIS municipality codes, names, sub-areas |
//!
//! The code tables are built from JMA's published code tables (`src/data/`, see its README for sources and
//! terms: 出典：気象庁).
//!
//! # Example
//!
//! ```
//! use jma_xml::report::{self, DocStatus, InfoType};
//! use jma_xml::{area, codes};
//!
//! let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
//! <Report xmlns="http://xml.kishou.go.jp/jmaxml1/">
//!   <Control>
//!     <Title>気象警報・注意報（Ｈ２７）</Title>
//!     <DateTime>2025-01-23T01:00:00Z</DateTime>
//!     <Status>通常</Status>
//!     <EditorialOffice>札幌管区気象台</EditorialOffice>
//!     <PublishingOffice>札幌管区気象台</PublishingOffice>
//!   </Control>
//!   <Head xmlns="http://xml.kishou.go.jp/jmaxml1/informationBasis1/">
//!     <Title>石狩・空知・後志地方気象警報・注意報</Title>
//!     <ReportDateTime>2025-01-23T10:00:00+09:00</ReportDateTime>
//!     <TargetDateTime>2025-01-23T10:00:00+09:00</TargetDateTime>
//!     <EventID />
//!     <InfoType>発表</InfoType>
//!     <Serial />
//!     <InfoKind>気象警報・注意報</InfoKind>
//!     <InfoKindVersion>1.2_1</InfoKindVersion>
//!     <Headline><Text>大雨警報を発表します。</Text></Headline>
//!   </Head>
//!   <Body xmlns="http://xml.kishou.go.jp/jmaxml1/body/meteorology1/">
//!     <Warning type="気象警報・注意報（市町村等）">
//!       <Item>
//!         <Kind><Name>大雨警報</Name><Code>03</Code><Status>発表</Status></Kind>
//!         <Area><Name>札幌市</Name><Code>0110000</Code></Area>
//!       </Item>
//!     </Warning>
//!   </Body>
//! </Report>"#;
//!
//! let r = report::parse(xml.as_bytes())?;
//! assert_eq!(r.data_type, "VPWW54");
//! assert_eq!(r.control.status, DocStatus::Normal);
//! assert_eq!(r.head.info_type, InfoType::Issue);
//!
//! let block = r.warning_block("気象警報・注意報（市町村等）").expect("the block");
//! let item = &block.items[0];
//! assert_eq!(item.areas[0].code, "0110000");
//! assert_eq!((item.kinds[0].code.as_str(), item.kinds[0].status.as_str()), ("03", "発表"));
//!
//! // Decisions key on codes, never on names.
//! let w = codes::warning("03").expect("a known code");
//! assert_eq!(w.phenomenon, codes::Phenomenon::HeavyRain);
//! assert_eq!(w.level(codes::Family::of(&r.data_type).unwrap()), Some(3));
//! assert_eq!(area::name("0110000"), Some("札幌市"));
//!
//! // Garbage and non-JMA documents are errors, never panics.
//! assert!(report::parse(b"<feed xmlns=\"http://www.w3.org/2005/Atom\"/>").is_err());
//! # Ok::<(), report::ParseError>(())
//! ```

pub mod area;
pub mod codes;
pub mod report;
