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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Kind {
    pub code: String,
    pub name: String,
    pub status: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
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
    /// Everything else the parser extracts (headline information, tsunami, intensity, river, volcano, ...).
    pub details: Details,
}

// ---------------------------------------------------------------------------------------------------------
// Additions of the parser (jma-parse). The types above keep their fields and meanings.
// ---------------------------------------------------------------------------------------------------------

/// Details beyond Control/Head/`Body/Warning`, filled according to the document type. Empty by default.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Details {
    /// The body's domain, from the namespace of `<Body>`.
    pub domain: Domain,
    /// `Some(reason)` when the type is not one Sonae acts on ("unhandled type"): the document parsed
    /// fine (Control/Head are filled, `Body/Warning` blocks are still collected) but nothing downstream
    /// should interpret it. Never an error: an unknown telegram must not stop the feed.
    pub unhandled: Option<String>,
    /// `Head/Headline/Information` blocks (the summary; the Body holds the full state).
    pub headline_information: Vec<HeadlineInformation>,
    /// `Body/Notice` (since 2026-05-28 VPWW54 lists 危険警報 here as text).
    pub notice: Option<String>,
    /// `Body/Text` (取消 documents carry only this).
    pub text: Option<String>,
    /// `Body/TargetArea` (VXWW50: the prefecture).
    pub target_area: Option<Area>,
    /// VTSE41 `Body/Tsunami/Forecast/Item`.
    pub tsunami_forecast: Vec<TsunamiForecastItem>,
    /// VXSE52/53 `Body/Earthquake`.
    pub earthquake: Option<Earthquake>,
    /// VXSE51/53 `Body/Intensity/Observation`.
    pub intensity: Option<Intensity>,
    /// VXKO 指定河川洪水予報.
    pub river_flood: Option<RiverFlood>,
    /// VFVO `Body/VolcanoInfo` blocks; `Kind.status` holds the Kind's `Condition` (発表, 引上げ, 継続, ...).
    pub volcano_info: Vec<WarningBlock>,
}

/// Namespace of `<Body>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    #[default]
    None,
    Meteorology,
    Seismology,
    Volcanology,
    /// A body namespace this parser does not know.
    Other,
}

/// `Head/Headline/Information[@type]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HeadlineInformation {
    pub info_type: String,
    pub items: Vec<HeadlineItem>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HeadlineItem {
    pub kinds: Vec<HeadlineKind>,
    /// `Areas/@codeType`.
    pub code_type: String,
    pub areas: Vec<Area>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HeadlineKind {
    pub name: String,
    pub code: String,
    pub condition: String,
}

/// One 津波予報区 of `Body/Tsunami/Forecast`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TsunamiForecastItem {
    /// 津波予報区 (3-digit code).
    pub area: Area,
    /// `Category/Kind` (codes: 52/53 大津波警報, 51 津波警報, 62 津波注意報, 71–73 津波予報, 50/60 解除, 00 なし).
    pub kind: Kind,
    /// `Category/LastKind`.
    pub last_kind: Option<Kind>,
    /// `FirstHeight/ArrivalTime` as written (JST).
    pub arrival_time: String,
    /// `FirstHeight/Condition` or `MaxHeight/Condition` (e.g. 津波到達中と推測, ただちに津波来襲と予測).
    pub condition: String,
    /// `MaxHeight/jmx_eb:TsunamiHeight/@description` (e.g. １ｍ, 巨大), or its trimmed value.
    pub max_height: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Earthquake {
    pub origin_time: Option<DateTime<FixedOffset>>,
    pub hypocenter: Area,
    /// `jmx_eb:Magnitude` text, trimmed (`NaN` when unknown).
    pub magnitude: String,
    /// `jmx_eb:Magnitude/@description` (e.g. Ｍ５．３, Ｍ不明).
    pub magnitude_description: String,
}

/// `Body/Intensity/Observation`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Intensity {
    /// Highest intensity observed (`1`…`4`, `5-`, `5+`, `6-`, `6+`, `7`).
    pub max_int: String,
    pub prefs: Vec<IntensityPref>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IntensityPref {
    pub code: String,
    pub name: String,
    pub max_int: String,
    pub areas: Vec<IntensityArea>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IntensityArea {
    pub code: String,
    pub name: String,
    pub max_int: String,
    pub cities: Vec<IntensityCity>,
}

/// A 市町村 (7-digit 市町村等 code; designated cities appear as wards, e.g. `0410100`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IntensityCity {
    pub code: String,
    pub name: String,
    /// Empty when not yet known; see `condition`.
    pub max_int: String,
    /// e.g. 震度５弱以上未入電.
    pub condition: String,
}

/// VXKO 指定河川洪水予報.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RiverFlood {
    /// 予報区域 (12-digit code, = Head/EventID), e.g. 890910000100 緑川水系.
    pub forecast_area: Area,
    /// The forecast kind (`Headline/Information[@type=指定河川洪水予報（予報区域）]/Item/Kind`):
    /// code 10 … 53, see [`crate::codes::river_flood`]. `status` holds the Kind's Condition.
    pub kind: Option<Kind>,
    /// Rivers (10-digit codes) the forecast covers.
    pub rivers: Vec<Area>,
    /// 浸水想定地区: municipalities (and their 地区) expected to flood, per 水位観測所.
    pub flood_areas: Vec<FloodArea>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FloodArea {
    pub station_code: String,
    pub station_name: String,
    pub prefecture: String,
    /// 7-digit 市町村等 code.
    pub city_code: String,
    pub city: String,
    /// Space-separated 地区 names as written.
    pub sub_city_list: String,
}

impl Head {
    /// `Serial` as a number (trimmed; `None` when empty, as in VPWW5x).
    pub fn serial_number(&self) -> Option<u32> {
        self.serial.trim().parse().ok()
    }
}

impl Report {
    /// False for types Sonae does not act on (see [`Details::unhandled`]).
    pub fn is_handled(&self) -> bool {
        self.details.unhandled.is_none()
    }

    /// The `Body/Warning` block of the given `type`, e.g. `気象警報・注意報（市町村等）`.
    pub fn warning_block(&self, block_type: &str) -> Option<&WarningBlock> {
        self.warnings.iter().find(|b| b.block_type == block_type)
    }
}

/// Why a document could not be parsed. The raw bytes are archived before parsing, so nothing is lost.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("empty document")]
    Empty,
    #[error("malformed XML at byte {position}: {message}")]
    Xml { position: u64, message: String },
    #[error("document ends early (truncated?) inside <{element}>")]
    Truncated { element: String },
    #[error("not a JMA report: {0}")]
    NotJma(String),
    #[error("JMA report without {0}")]
    Missing(&'static str),
    #[error("{field}: unexpected value \"{value}\"")]
    BadValue { field: &'static str, value: String },
}

/// Maps `Control/Title` to the data-type code (電文種別). Returns `""` for titles not in the table.
/// 指定河川洪水予報 maps to `VXKO` (the two digits name the river; take them from the URL if needed).
pub fn data_type_from_title(title: &str) -> &'static str {
    match title {
        "気象警報・注意報" => "VPWW50",
        "気象特別警報・警報・注意報" => "VPWW53",
        "気象警報・注意報（Ｈ２７）" => "VPWW54",
        "気象警報・注意報（Ｒ０６）（大雨）" => "VPWW55",
        "気象警報・注意報（Ｒ０６）（土砂）" | "気象警報・注意報（Ｒ０６）（土砂災害）" => {
            "VPWW56"
        }
        "気象警報・注意報（Ｒ０６）（高潮）" => "VPWW57",
        "気象警報・注意報（Ｒ０６）（暴風）" => "VPWW58",
        "気象警報・注意報（Ｒ０６）（波浪）" => "VPWW59",
        "気象警報・注意報（Ｒ０６）（大雪）" => "VPWW60",
        "気象警報・注意報（Ｒ０６）（その他注意報）" => "VPWW61",
        "気象警報・注意報（Ｒ０６）（集約通報）" => "VPWS50",
        "気象警報・注意報時系列情報（Ｒ０６）" => "VPWP50",
        "気象特別警報報知" => "VPNO50",
        "土砂災害警戒情報" => "VXWW50",
        "指定河川洪水予報" => "VXKO",
        "記録的短時間大雨情報" => "VPOA50",
        "竜巻注意情報" => "VPHW50",
        "竜巻注意情報（目撃情報付き）" => "VPHW51",
        "府県気象防災速報" => "VPBS50",
        "津波警報・注意報・予報a" => "VTSE41",
        "津波情報a" => "VTSE51",
        "沖合の津波観測に関する情報" => "VTSE52",
        "震度速報" => "VXSE51",
        "震源に関する情報" => "VXSE52",
        "震源・震度に関する情報" => "VXSE53",
        "緊急地震速報（警報）" => "VXSE43",
        "緊急地震速報（予報）" => "VXSE44",
        "緊急地震速報配信テスト" => "VXSE42",
        "噴火警報・予報" => "VFVO50",
        "火山の状況に関する解説情報" => "VFVO51",
        "噴火に関する火山観測報" => "VFVO52",
        "噴火速報" => "VFVO56",
        _ => "",
    }
}

/// The data-type code in a telegram URL or file name: the `_`-separated part that looks like `VPWW54`
/// (four capital letters and two digits), e.g. `…/20260112065719_0_VPWW54_350000.xml` → `VPWW54`.
pub fn data_type_from_url(url: &str) -> Option<&str> {
    let file = url.rsplit(['/', '\\']).next().unwrap_or(url);
    let stem = file.strip_suffix(".xml").unwrap_or(file);
    stem.split('_').find(|part| {
        let b = part.as_bytes();
        b.len() == 6
            && b[..4].iter().all(u8::is_ascii_uppercase)
            && b[4..].iter().all(u8::is_ascii_digit)
    })
}

/// Whether Sonae interprets documents of this data type (the rest are archived and marked unhandled).
pub fn is_handled_type(data_type: &str) -> bool {
    matches!(
        data_type,
        "VPWW50"
            | "VPWW53"
            | "VPWW54"
            | "VPWW55"
            | "VPWW56"
            | "VPWW57"
            | "VPWW58"
            | "VPWW59"
            | "VPWW60"
            | "VPWW61"
            | "VXWW50"
            | "VPOA50"
            | "VPHW50"
            | "VPHW51"
            | "VTSE41"
            | "VXSE51"
            | "VXSE52"
            | "VXSE53"
            | "VFVO50"
    ) || (data_type.starts_with("VXKO"))
}

/// Parses one JMA XML document. Pure: no I/O, no clock.
///
/// One forward pass over quick-xml's borrowed reader events: namespaces are resolved for every element the
/// parser looks at (the default namespace changes at `<Head>` and `<Body>`; `jmx_eb:` values are matched by
/// URI, not prefix), only the fields Sonae uses are copied into owned strings, and subtrees it does not use
/// (e.g. the 量的予想時系列 that makes up ~70 % of a VPWW54) are skipped without namespace bookkeeping. Text is trimmed (a real sample has `> 200<`).
pub fn parse(xml: &[u8]) -> Result<Report, ParseError> {
    parser::parse(xml)
}

mod parser {
    use super::*;
    use quick_xml::events::{BytesStart, Event};
    use quick_xml::name::QName;
    use quick_xml::Reader;

    const NS_JMX: &[u8] = b"http://xml.kishou.go.jp/jmaxml1/";
    const NS_IB: &[u8] = b"http://xml.kishou.go.jp/jmaxml1/informationBasis1/";
    const NS_EB: &[u8] = b"http://xml.kishou.go.jp/jmaxml1/elementBasis1/";
    const NS_BODY_PREFIX: &[u8] = b"http://xml.kishou.go.jp/jmaxml1/body/";
    const NS_METE: &[u8] = b"http://xml.kishou.go.jp/jmaxml1/body/meteorology1/";
    const NS_SEIS: &[u8] = b"http://xml.kishou.go.jp/jmaxml1/body/seismology1/";
    const NS_VOLC: &[u8] = b"http://xml.kishou.go.jp/jmaxml1/body/volcanology1/";
    const NS_ATOM: &[u8] = b"http://www.w3.org/2005/Atom";

    /// Which namespace an element is in, as far as the parser cares.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Ns {
        Jmx,
        Ib,
        Body,
        Eb,
        Other,
    }

    enum Step<'i> {
        Start(BytesStart<'i>),
        End,
    }

    /// A namespace declaration in scope: (prefix, URI, depth of the declaring element).
    struct Binding {
        prefix: Vec<u8>,
        uri: Vec<u8>,
        depth: u32,
    }

    /// Recursive descent over quick-xml's borrowed `Reader`, with namespace scopes kept here rather than
    /// in `NsReader`: subtrees that are skipped with `read_to_end` then cost no namespace bookkeeping
    /// (and `NsReader::read_to_end` would leave its scope stack one level off). Every element opened by
    /// [`P::next`] is closed exactly once: by its `End` event or by [`P::skip`].
    struct P<'i> {
        r: Reader<&'i [u8]>,
        scopes: Vec<Binding>,
        depth: u32,
        /// Namespace URI of `<Body>` (children of Body are matched against it).
        body_ns: &'static [u8],
    }

    fn xml_err(r: &Reader<&[u8]>, e: impl std::fmt::Display) -> ParseError {
        ParseError::Xml {
            position: r.error_position(),
            message: e.to_string(),
        }
    }

    fn local_str(e: &BytesStart) -> String {
        String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
    }

    impl<'i> P<'i> {
        /// Reads the next event, keeping the namespace scopes and depth in step with Start/End.
        fn next(&mut self) -> Result<Event<'i>, ParseError> {
            let ev = self.r.read_event().map_err(|e| xml_err(&self.r, e))?;
            match &ev {
                Event::Start(e) => self.open(e),
                Event::End(_) => self.close(),
                _ => {}
            }
            Ok(ev)
        }

        fn open(&mut self, e: &BytesStart) {
            self.depth += 1;
            let raw = e.attributes_raw();
            if raw.len() < 5 || !raw.windows(5).any(|w| w == b"xmlns") {
                return;
            }
            for a in e.attributes().with_checks(false).flatten() {
                let key = a.key.as_ref();
                let prefix = if key == b"xmlns" {
                    Some(&b""[..])
                } else {
                    key.strip_prefix(b"xmlns:")
                };
                if let Some(prefix) = prefix {
                    self.scopes.push(Binding {
                        prefix: prefix.to_vec(),
                        uri: a.value.to_vec(),
                        depth: self.depth,
                    });
                }
            }
        }

        fn close(&mut self) {
            while self.scopes.last().is_some_and(|b| b.depth >= self.depth) {
                self.scopes.pop();
            }
            self.depth = self.depth.saturating_sub(1);
        }

        /// Namespace URI of an element name in the current scope (`b""` when unbound).
        fn uri(&self, name: QName) -> &[u8] {
            let prefix: &[u8] = name.prefix().map(|p| p.into_inner()).unwrap_or(b"");
            self.scopes
                .iter()
                .rev()
                .find(|b| b.prefix == prefix)
                .map(|b| b.uri.as_slice())
                .unwrap_or(b"")
        }

        fn ns(&self, e: &BytesStart) -> Ns {
            let ns = self.uri(e.name());
            if ns == NS_JMX {
                Ns::Jmx
            } else if ns == NS_IB {
                Ns::Ib
            } else if ns == NS_EB {
                Ns::Eb
            } else if !self.body_ns.is_empty() && ns == self.body_ns {
                Ns::Body
            } else {
                Ns::Other
            }
        }

        /// Next child start of the current element, or its end. Text between children is ignored.
        fn step(&mut self, parent: &BytesStart) -> Result<Step<'i>, ParseError> {
            loop {
                match self.next()? {
                    Event::Start(e) => return Ok(Step::Start(e)),
                    Event::End(_) => return Ok(Step::End),
                    Event::Eof => {
                        return Err(ParseError::Truncated {
                            element: local_str(parent),
                        })
                    }
                    // Text, comments, CDATA, PIs between elements: nothing to keep.
                    _ => {}
                }
            }
        }

        fn skip(&mut self, e: &BytesStart) -> Result<(), ParseError> {
            // `read_to_end` consumes the matching End without going through `next`.
            let res = self.r.read_to_end(e.name());
            self.close();
            match res {
                Ok(_) => Ok(()),
                Err(quick_xml::Error::Syntax(_)) | Err(quick_xml::Error::IllFormed(_))
                    if self.r.buffer_position() as usize >= self.r.get_ref().len() =>
                {
                    Err(ParseError::Truncated {
                        element: local_str(e),
                    })
                }
                Err(err) => Err(xml_err(&self.r, err)),
            }
        }

        /// The trimmed text content of the element just opened; nested elements are skipped.
        fn text(&mut self, parent: &BytesStart) -> Result<String, ParseError> {
            let mut out = String::new();
            loop {
                match self.next()? {
                    Event::Text(t) => {
                        let s = t.unescape().map_err(|e| xml_err(&self.r, e))?;
                        out.push_str(&s);
                    }
                    Event::CData(c) => {
                        let s = c.decode().map_err(|e| xml_err(&self.r, e))?;
                        out.push_str(&s);
                    }
                    Event::Start(e) => self.skip(&e)?,
                    Event::End(_) => break,
                    Event::Eof => {
                        return Err(ParseError::Truncated {
                            element: local_str(parent),
                        })
                    }
                    _ => {}
                }
            }
            let trimmed = out.trim();
            if trimmed.len() != out.len() {
                out = trimmed.to_owned();
            }
            Ok(out)
        }

        fn attr(&self, e: &BytesStart, key: &[u8]) -> Result<String, ParseError> {
            match e.try_get_attribute(key) {
                Ok(Some(a)) => a
                    .unescape_value()
                    .map(|v| v.trim().to_owned())
                    .map_err(|err| xml_err(&self.r, err)),
                Ok(None) => Ok(String::new()),
                Err(err) => Err(xml_err(&self.r, err)),
            }
        }

        // --- document ---------------------------------------------------------------------------------

        fn document(&mut self) -> Result<Report, ParseError> {
            // Find the root element.
            let root = loop {
                match self.next()? {
                    Event::Start(e) => break e,
                    Event::Eof => return Err(ParseError::NotJma("no root element".into())),
                    Event::Text(t) if !t.iter().all(u8::is_ascii_whitespace) => {
                        return Err(ParseError::NotJma("text before the root element".into()))
                    }
                    _ => {}
                }
            };
            let local = root.local_name();
            let ns_bytes = self.uri(root.name());
            if local.as_ref() != b"Report" || ns_bytes != NS_JMX {
                let what = if ns_bytes == NS_ATOM && local.as_ref() == b"feed" {
                    "this is an Atom feed (root <feed>), not a telegram".to_owned()
                } else {
                    format!(
                        "root element <{}> in namespace \"{}\" (expected <Report> in {})",
                        String::from_utf8_lossy(local.as_ref()),
                        String::from_utf8_lossy(ns_bytes),
                        String::from_utf8_lossy(NS_JMX)
                    )
                };
                return Err(ParseError::NotJma(what));
            }

            let mut control = None;
            let mut head = None;
            let mut details = Details::default();
            let mut warnings = Vec::new();
            let mut saw_body = false;
            while let Step::Start(e) = self.step(&root)? {
                let ns = self.uri(e.name());
                let body: Option<(Domain, &'static [u8])> = if !ns.starts_with(NS_BODY_PREFIX) {
                    None
                } else if ns == NS_METE {
                    Some((Domain::Meteorology, NS_METE))
                } else if ns == NS_SEIS {
                    Some((Domain::Seismology, NS_SEIS))
                } else if ns == NS_VOLC {
                    Some((Domain::Volcanology, NS_VOLC))
                } else {
                    Some((Domain::Other, b""))
                };
                let which = self.ns(&e);
                match e.local_name().as_ref() {
                    b"Control" if which == Ns::Jmx => control = Some(self.control(&e)?),
                    b"Head" if which == Ns::Ib => head = Some(self.head(&e, &mut details)?),
                    b"Body" if body.is_some() => {
                        saw_body = true;
                        let (domain, body_ns) = body.unwrap_or((Domain::Other, b""));
                        details.domain = domain;
                        self.body_ns = body_ns;
                        if body_ns.is_empty() {
                            self.skip(&e)?;
                        } else {
                            self.body(&e, &mut warnings, &mut details)?;
                        }
                    }
                    _ => self.skip(&e)?,
                }
            }
            // Anything after </Report> other than whitespace/comments is malformed.
            loop {
                match self.next()? {
                    Event::Eof => break,
                    Event::Start(_) | Event::End(_) | Event::Empty(_) => {
                        return Err(ParseError::Xml {
                            position: self.r.buffer_position(),
                            message: "content after the root element".into(),
                        })
                    }
                    _ => {}
                }
            }
            let control = control.ok_or(ParseError::Missing("Control"))?;
            let head = head.ok_or(ParseError::Missing("Head"))?;
            if !saw_body {
                return Err(ParseError::Missing("Body"));
            }
            let data_type = data_type_from_title(&control.title).to_owned();
            if !is_handled_type(&data_type) {
                details.unhandled = Some(if data_type.is_empty() {
                    format!("unhandled type: Control/Title 「{}」", control.title)
                } else {
                    format!("unhandled type: {data_type} 「{}」", control.title)
                });
            }
            if data_type == "VXKO" {
                finish_river(&head, &warnings, &mut details);
            }
            Ok(Report {
                data_type,
                control,
                head,
                warnings,
                details,
            })
        }

        fn control(&mut self, parent: &BytesStart) -> Result<Control, ParseError> {
            let mut title = None;
            let mut datetime = None;
            let mut status = None;
            let mut editorial_office = String::new();
            let mut publishing_office = String::new();
            while let Step::Start(e) = self.step(parent)? {
                if self.ns(&e) != Ns::Jmx {
                    self.skip(&e)?;
                    continue;
                }
                match e.local_name().as_ref() {
                    b"Title" => title = Some(self.text(&e)?),
                    b"DateTime" => datetime = date(self.text(&e)?, "Control/DateTime")?,
                    b"Status" => {
                        let v = self.text(&e)?;
                        status = Some(match v.as_str() {
                            "通常" => DocStatus::Normal,
                            "訓練" => DocStatus::Drill,
                            "試験" => DocStatus::Test,
                            _ => {
                                return Err(ParseError::BadValue {
                                    field: "Control/Status",
                                    value: v,
                                })
                            }
                        });
                    }
                    b"EditorialOffice" => editorial_office = self.text(&e)?,
                    b"PublishingOffice" => publishing_office = self.text(&e)?,
                    _ => self.skip(&e)?,
                }
            }
            let title = title
                .filter(|t| !t.is_empty())
                .ok_or(ParseError::Missing("Control/Title"))?;
            Ok(Control {
                title,
                datetime,
                status: status.ok_or(ParseError::Missing("Control/Status"))?,
                editorial_office,
                publishing_office,
            })
        }

        fn head(&mut self, parent: &BytesStart, details: &mut Details) -> Result<Head, ParseError> {
            let mut head = Head {
                title: String::new(),
                report_datetime: None,
                target_datetime: None,
                event_id: String::new(),
                info_type: InfoType::Issue,
                serial: String::new(),
                info_kind: String::new(),
                info_kind_version: String::new(),
                headline: String::new(),
            };
            let mut info_type = None;
            while let Step::Start(e) = self.step(parent)? {
                if self.ns(&e) != Ns::Ib {
                    self.skip(&e)?;
                    continue;
                }
                match e.local_name().as_ref() {
                    b"Title" => head.title = self.text(&e)?,
                    b"ReportDateTime" => {
                        head.report_datetime = date(self.text(&e)?, "Head/ReportDateTime")?
                    }
                    // Lenient: TargetDateTime is informative, may be xsi:nil, and must not cost an alert.
                    b"TargetDateTime" => {
                        head.target_datetime = DateTime::parse_from_rfc3339(&self.text(&e)?).ok()
                    }
                    b"EventID" => head.event_id = self.text(&e)?,
                    b"InfoType" => {
                        let v = self.text(&e)?;
                        info_type = Some(match v.as_str() {
                            "発表" => InfoType::Issue,
                            "訂正" => InfoType::Correction,
                            "遅延" => InfoType::Delay,
                            "取消" => InfoType::Cancel,
                            _ => {
                                return Err(ParseError::BadValue {
                                    field: "Head/InfoType",
                                    value: v,
                                })
                            }
                        });
                    }
                    b"Serial" => head.serial = self.text(&e)?,
                    b"InfoKind" => head.info_kind = self.text(&e)?,
                    b"InfoKindVersion" => head.info_kind_version = self.text(&e)?,
                    b"Headline" => self.headline(&e, &mut head, details)?,
                    _ => self.skip(&e)?,
                }
            }
            head.info_type = info_type.ok_or(ParseError::Missing("Head/InfoType"))?;
            Ok(head)
        }

        fn headline(
            &mut self,
            parent: &BytesStart,
            head: &mut Head,
            details: &mut Details,
        ) -> Result<(), ParseError> {
            while let Step::Start(e) = self.step(parent)? {
                if self.ns(&e) != Ns::Ib {
                    self.skip(&e)?;
                    continue;
                }
                match e.local_name().as_ref() {
                    b"Text" => head.headline = self.text(&e)?,
                    b"Information" => {
                        let mut info = HeadlineInformation {
                            info_type: self.attr(&e, b"type")?,
                            items: Vec::new(),
                        };
                        while let Step::Start(item) = self.step(&e)? {
                            if self.ns(&item) == Ns::Ib && item.local_name().as_ref() == b"Item" {
                                info.items.push(self.headline_item(&item)?);
                            } else {
                                self.skip(&item)?;
                            }
                        }
                        details.headline_information.push(info);
                    }
                    _ => self.skip(&e)?,
                }
            }
            Ok(())
        }

        fn headline_item(&mut self, parent: &BytesStart) -> Result<HeadlineItem, ParseError> {
            let mut item = HeadlineItem::default();
            while let Step::Start(e) = self.step(parent)? {
                if self.ns(&e) != Ns::Ib {
                    self.skip(&e)?;
                    continue;
                }
                match e.local_name().as_ref() {
                    b"Kind" => {
                        let mut k = HeadlineKind::default();
                        while let Step::Start(c) = self.step(&e)? {
                            match (self.ns(&c), c.local_name().as_ref()) {
                                (Ns::Ib, b"Name") => k.name = self.text(&c)?,
                                (Ns::Ib, b"Code") => k.code = self.text(&c)?,
                                (Ns::Ib, b"Condition") => k.condition = self.text(&c)?,
                                _ => self.skip(&c)?,
                            }
                        }
                        item.kinds.push(k);
                    }
                    b"Areas" => {
                        item.code_type = self.attr(&e, b"codeType")?;
                        while let Step::Start(a) = self.step(&e)? {
                            if self.ns(&a) == Ns::Ib && a.local_name().as_ref() == b"Area" {
                                item.areas.push(self.area(&a, Ns::Ib, None)?);
                            } else {
                                self.skip(&a)?;
                            }
                        }
                    }
                    _ => self.skip(&e)?,
                }
            }
            Ok(item)
        }

        /// `Area` with `Name`/`Code` in namespace `ns`; VXKO 浸水想定地区 extras go to `flood`.
        fn area(
            &mut self,
            parent: &BytesStart,
            ns: Ns,
            mut flood: Option<&mut FloodArea>,
        ) -> Result<Area, ParseError> {
            let mut area = Area {
                code: String::new(),
                name: String::new(),
            };
            while let Step::Start(c) = self.step(parent)? {
                if self.ns(&c) != ns {
                    self.skip(&c)?;
                    continue;
                }
                match (c.local_name().as_ref(), flood.as_deref_mut()) {
                    (b"Name", _) => area.name = self.text(&c)?,
                    (b"Code", _) => area.code = self.text(&c)?,
                    (b"Prefecture", Some(f)) => f.prefecture = self.text(&c)?,
                    (b"CityCode", Some(f)) => f.city_code = self.text(&c)?,
                    (b"City", Some(f)) => f.city = self.text(&c)?,
                    (b"SubCityList", Some(f)) => f.sub_city_list = self.text(&c)?,
                    _ => self.skip(&c)?,
                }
            }
            Ok(area)
        }

        // --- body -------------------------------------------------------------------------------------

        fn body(
            &mut self,
            parent: &BytesStart,
            warnings: &mut Vec<WarningBlock>,
            details: &mut Details,
        ) -> Result<(), ParseError> {
            while let Step::Start(e) = self.step(parent)? {
                if self.ns(&e) != Ns::Body {
                    self.skip(&e)?;
                    continue;
                }
                match e.local_name().as_ref() {
                    b"Warning" => {
                        let block = self.warning(&e, details)?;
                        warnings.push(block);
                    }
                    b"VolcanoInfo" => {
                        let block = self.warning(&e, details)?;
                        details.volcano_info.push(block);
                    }
                    b"Notice" => details.notice = Some(self.text(&e)?),
                    b"Text" => details.text = Some(self.text(&e)?),
                    b"TargetArea" => details.target_area = Some(self.area(&e, Ns::Body, None)?),
                    b"Tsunami" => self.tsunami(&e, details)?,
                    b"Earthquake" => details.earthquake = Some(self.earthquake(&e)?),
                    b"Intensity" => self.intensity(&e, details)?,
                    _ => self.skip(&e)?,
                }
            }
            Ok(())
        }

        /// `Warning[@type]` (and `VolcanoInfo[@type]`, same shape with `Condition` instead of `Status`).
        fn warning(
            &mut self,
            parent: &BytesStart,
            details: &mut Details,
        ) -> Result<WarningBlock, ParseError> {
            let mut block = WarningBlock {
                block_type: self.attr(parent, b"type")?,
                items: Vec::new(),
            };
            while let Step::Start(e) = self.step(parent)? {
                if self.ns(&e) == Ns::Body && e.local_name().as_ref() == b"Item" {
                    let item = self.warning_item(&e, details)?;
                    block.items.push(item);
                } else {
                    self.skip(&e)?;
                }
            }
            Ok(block)
        }

        fn warning_item(
            &mut self,
            parent: &BytesStart,
            details: &mut Details,
        ) -> Result<WarningItem, ParseError> {
            let mut item = WarningItem {
                areas: Vec::new(),
                kinds: Vec::new(),
            };
            while let Step::Start(e) = self.step(parent)? {
                if self.ns(&e) != Ns::Body {
                    self.skip(&e)?;
                    continue;
                }
                match e.local_name().as_ref() {
                    b"Kind" => {
                        if let Some(k) = self.kind(&e)? {
                            item.kinds.push(k);
                        }
                    }
                    b"Area" => item.areas.push(self.area(&e, Ns::Body, None)?),
                    b"Areas" => {
                        let river = self.attr(&e, b"codeType")? == "河川";
                        while let Step::Start(a) = self.step(&e)? {
                            if self.ns(&a) == Ns::Body && a.local_name().as_ref() == b"Area" {
                                let mut flood = FloodArea::default();
                                let area = self.area(&a, Ns::Body, Some(&mut flood))?;
                                if !flood.city_code.is_empty() {
                                    flood.station_code = area.code.clone();
                                    flood.station_name = area.name.clone();
                                    details
                                        .river_flood
                                        .get_or_insert_with(RiverFlood::default)
                                        .flood_areas
                                        .push(flood);
                                } else if river {
                                    let rf =
                                        details.river_flood.get_or_insert_with(RiverFlood::default);
                                    if !rf.rivers.iter().any(|r| r.code == area.code) {
                                        rf.rivers.push(area.clone());
                                    }
                                }
                                item.areas.push(area);
                            } else {
                                self.skip(&a)?;
                            }
                        }
                    }
                    _ => self.skip(&e)?,
                }
            }
            Ok(item)
        }

        /// A `Kind` with a `Code` (others, e.g. 発表警報・注意報はなし or VXKO 主文, give `None`).
        /// Only direct children count: `LastKind`, `Property/…/Significancy` also carry Name/Code.
        fn kind(&mut self, parent: &BytesStart) -> Result<Option<Kind>, ParseError> {
            let mut k = Kind {
                code: String::new(),
                name: String::new(),
                status: String::new(),
            };
            let mut has_code = false;
            while let Step::Start(c) = self.step(parent)? {
                if self.ns(&c) != Ns::Body {
                    self.skip(&c)?;
                    continue;
                }
                match c.local_name().as_ref() {
                    b"Name" => k.name = self.text(&c)?,
                    b"Code" => {
                        k.code = self.text(&c)?;
                        has_code = true;
                    }
                    b"Status" => k.status = self.text(&c)?,
                    // VolcanoInfo kinds state the change in Condition (発表, 引上げ, 継続 …).
                    b"Condition" if k.status.is_empty() && self.body_ns == NS_VOLC => {
                        k.status = self.text(&c)?
                    }
                    _ => self.skip(&c)?,
                }
            }
            Ok(if has_code && !k.code.is_empty() {
                Some(k)
            } else {
                None
            })
        }

        fn tsunami(
            &mut self,
            parent: &BytesStart,
            details: &mut Details,
        ) -> Result<(), ParseError> {
            while let Step::Start(e) = self.step(parent)? {
                if self.ns(&e) != Ns::Body || e.local_name().as_ref() != b"Forecast" {
                    self.skip(&e)?;
                    continue;
                }
                while let Step::Start(it) = self.step(&e)? {
                    if self.ns(&it) != Ns::Body || it.local_name().as_ref() != b"Item" {
                        self.skip(&it)?;
                        continue;
                    }
                    let mut item = TsunamiForecastItem::default();
                    while let Step::Start(c) = self.step(&it)? {
                        if self.ns(&c) != Ns::Body {
                            self.skip(&c)?;
                            continue;
                        }
                        match c.local_name().as_ref() {
                            b"Area" => item.area = self.area(&c, Ns::Body, None)?,
                            b"Category" => {
                                while let Step::Start(k) = self.step(&c)? {
                                    let which = (self.ns(&k), k.local_name().as_ref().to_vec());
                                    match which {
                                        (Ns::Body, ref n) if n == b"Kind" => {
                                            if let Some(kind) = self.kind(&k)? {
                                                item.kind = kind;
                                            }
                                        }
                                        (Ns::Body, ref n) if n == b"LastKind" => {
                                            item.last_kind = self.kind(&k)?
                                        }
                                        _ => self.skip(&k)?,
                                    }
                                }
                            }
                            b"FirstHeight" | b"MaxHeight" => {
                                while let Step::Start(h) = self.step(&c)? {
                                    match (self.ns(&h), h.local_name().as_ref()) {
                                        (Ns::Body, b"ArrivalTime") => {
                                            item.arrival_time = self.text(&h)?
                                        }
                                        (Ns::Body, b"Condition") if item.condition.is_empty() => {
                                            item.condition = self.text(&h)?
                                        }
                                        (Ns::Eb, b"TsunamiHeight") => {
                                            let d = self.attr(&h, b"description")?;
                                            let v = self.text(&h)?;
                                            item.max_height = if d.is_empty() { v } else { d };
                                        }
                                        _ => self.skip(&h)?,
                                    }
                                }
                            }
                            _ => self.skip(&c)?,
                        }
                    }
                    details.tsunami_forecast.push(item);
                }
            }
            Ok(())
        }

        fn earthquake(&mut self, parent: &BytesStart) -> Result<Earthquake, ParseError> {
            let mut q = Earthquake::default();
            while let Step::Start(e) = self.step(parent)? {
                match (self.ns(&e), e.local_name().as_ref()) {
                    (Ns::Body, b"OriginTime") => {
                        q.origin_time = DateTime::parse_from_rfc3339(&self.text(&e)?).ok()
                    }
                    (Ns::Body, b"Hypocenter") => {
                        while let Step::Start(a) = self.step(&e)? {
                            if self.ns(&a) == Ns::Body && a.local_name().as_ref() == b"Area" {
                                q.hypocenter = self.area(&a, Ns::Body, None)?;
                            } else {
                                self.skip(&a)?;
                            }
                        }
                    }
                    (Ns::Eb, b"Magnitude") => {
                        q.magnitude_description = self.attr(&e, b"description")?;
                        q.magnitude = self.text(&e)?;
                    }
                    _ => self.skip(&e)?,
                }
            }
            Ok(q)
        }

        fn intensity(
            &mut self,
            parent: &BytesStart,
            details: &mut Details,
        ) -> Result<(), ParseError> {
            let mut out = Intensity::default();
            let mut seen = false;
            while let Step::Start(e) = self.step(parent)? {
                if self.ns(&e) != Ns::Body || e.local_name().as_ref() != b"Observation" {
                    self.skip(&e)?;
                    continue;
                }
                seen = true;
                while let Step::Start(c) = self.step(&e)? {
                    match (self.ns(&c), c.local_name().as_ref()) {
                        (Ns::Body, b"MaxInt") => out.max_int = self.text(&c)?,
                        (Ns::Body, b"Pref") => {
                            let mut pref = IntensityPref::default();
                            while let Step::Start(p) = self.step(&c)? {
                                match (self.ns(&p), p.local_name().as_ref()) {
                                    (Ns::Body, b"Name") => pref.name = self.text(&p)?,
                                    (Ns::Body, b"Code") => pref.code = self.text(&p)?,
                                    (Ns::Body, b"MaxInt") => pref.max_int = self.text(&p)?,
                                    (Ns::Body, b"Area") => {
                                        pref.areas.push(self.intensity_area(&p)?)
                                    }
                                    _ => self.skip(&p)?,
                                }
                            }
                            out.prefs.push(pref);
                        }
                        _ => self.skip(&c)?,
                    }
                }
            }
            if seen {
                details.intensity = Some(out);
            }
            Ok(())
        }

        fn intensity_area(&mut self, parent: &BytesStart) -> Result<IntensityArea, ParseError> {
            let mut area = IntensityArea::default();
            while let Step::Start(a) = self.step(parent)? {
                match (self.ns(&a), a.local_name().as_ref()) {
                    (Ns::Body, b"Name") => area.name = self.text(&a)?,
                    (Ns::Body, b"Code") => area.code = self.text(&a)?,
                    (Ns::Body, b"MaxInt") => area.max_int = self.text(&a)?,
                    (Ns::Body, b"City") => {
                        let mut city = IntensityCity::default();
                        while let Step::Start(c) = self.step(&a)? {
                            match (self.ns(&c), c.local_name().as_ref()) {
                                (Ns::Body, b"Name") => city.name = self.text(&c)?,
                                (Ns::Body, b"Code") => city.code = self.text(&c)?,
                                (Ns::Body, b"MaxInt") => city.max_int = self.text(&c)?,
                                (Ns::Body, b"Condition") => city.condition = self.text(&c)?,
                                _ => self.skip(&c)?,
                            }
                        }
                        area.cities.push(city);
                    }
                    _ => self.skip(&a)?,
                }
            }
            Ok(area)
        }
    }

    fn date(s: String, field: &'static str) -> Result<Option<DateTime<FixedOffset>>, ParseError> {
        if s.is_empty() {
            return Ok(None);
        }
        DateTime::parse_from_rfc3339(&s)
            .map(Some)
            .map_err(|_| ParseError::BadValue { field, value: s })
    }

    /// VXKO: the forecast area and kind come from the Head (EventID, 予報区域 headline); rivers and
    /// 浸水想定地区 were collected from the Body.
    fn finish_river(head: &Head, _warnings: &[WarningBlock], details: &mut Details) {
        let mut rf = details.river_flood.take().unwrap_or_default();
        for info in &details.headline_information {
            if info.info_type == "指定河川洪水予報（予報区域）" {
                if let Some(item) = info.items.first() {
                    if let Some(k) = item.kinds.first() {
                        rf.kind = Some(Kind {
                            code: k.code.clone(),
                            name: k.name.clone(),
                            status: k.condition.clone(),
                        });
                    }
                    if let Some(a) = item.areas.first() {
                        rf.forecast_area = a.clone();
                    }
                }
            } else if info.info_type == "指定河川洪水予報（河川）" {
                for item in &info.items {
                    for a in &item.areas {
                        if !rf.rivers.iter().any(|r| r.code == a.code) {
                            rf.rivers.push(a.clone());
                        }
                    }
                }
            }
        }
        if rf.forecast_area.code.is_empty() {
            rf.forecast_area.code = head.event_id.clone();
        }
        details.river_flood = Some(rf);
    }

    pub(super) fn parse(xml: &[u8]) -> Result<Report, ParseError> {
        if xml.iter().all(u8::is_ascii_whitespace) {
            return Err(ParseError::Empty);
        }
        // A UTF-8 byte-order mark is legal; quick-xml's borrowed reader does not strip it.
        let xml = xml.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(xml);
        let mut r = Reader::from_reader(xml);
        let cfg = r.config_mut();
        cfg.expand_empty_elements = true;
        cfg.trim_text(true);
        cfg.check_end_names = true;
        let mut p = P {
            r,
            scopes: Vec::new(),
            depth: 0,
            body_ns: b"",
        };
        p.document()
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
