//! JMA XML → typed [`Report`]. Pure: no I/O.
//!
//! The data types here are the contract between the parser and everything downstream (active-warning state,
//! `sonae jma inspect`, the disaster engine). Fields may be added; the ones below keep their meaning.

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

/// Control/Status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum DocStatus {
    /// 通常 — real.
    #[serde(rename = "通常")]
    Normal,
    /// 訓練 — exercise; goes to the drill path only.
    #[serde(rename = "訓練")]
    Drill,
    /// 試験 — system test; reaches nobody.
    #[serde(rename = "試験")]
    Test,
}

/// Head/InfoType.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum InfoType {
    #[serde(rename = "発表")]
    Issue,
    #[serde(rename = "訂正")]
    Correction,
    #[serde(rename = "遅延")]
    Delay,
    #[serde(rename = "取消")]
    Cancel,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Control {
    pub title: String,
    pub datetime: Option<DateTime<FixedOffset>>,
    pub status: DocStatus,
    pub editorial_office: String,
    pub publishing_office: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Head {
    pub title: String,
    pub report_datetime: Option<DateTime<FixedOffset>>,
    pub target_datetime: Option<DateTime<FixedOffset>>,
    /// Empty for VPWW5x.
    pub event_id: String,
    pub info_type: InfoType,
    /// Empty for VPWW5x.
    pub serial: String,
    pub info_kind: String,
    pub info_kind_version: String,
    pub headline: String,
}

/// One `Kind` of an Item: a warning/advisory code with its status (発表, 継続, 解除, 特別警報から警報, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Kind {
    pub code: String,
    pub name: String,
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Area {
    pub code: String,
    pub name: String,
}

/// One `Item` of a `Warning` block: areas and the kinds that apply to them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WarningItem {
    pub areas: Vec<Area>,
    /// Only Kinds that carry a `Code`, in document order.
    pub kinds: Vec<Kind>,
}

/// `Body/Warning[@type]` — e.g. type = 気象警報・注意報（市町村等）, 土砂災害警戒情報.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WarningBlock {
    pub block_type: String,
    pub items: Vec<WarningItem>,
}

/// A parsed document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The data-type code, e.g. "VPWW54", taken from the document (Control/Title mapping) or the file name/URL.
    pub data_type: String,
    pub control: Control,
    pub head: Head,
    /// Every `Body/Warning` block (warnings, 土砂, 竜巻, 記録的短時間大雨, river flood ...).
    pub warnings: Vec<WarningBlock>,
}
