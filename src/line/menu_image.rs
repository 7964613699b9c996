//! Rich-menu images: one tile per tap area with its Japanese label, drawn without I/O.
//!
//! LINE shows the 2500-px-wide image about 375 pt wide on a phone (a scale of ~1/6.7), so labels are set
//! at 112 px (tabs 100 px) — about 16–17 pt on screen, the size of LINE's own chat text — in BIZ UDPGothic
//! Bold, a universal-design gothic made for public signage and forms (SIL OFL 1.1). The font is embedded
//! as a subset holding only the characters the templates use (`scripts/subset-menu-font`, ~14 KB); a label
//! with a character the subset lacks is an [`ImageError::MissingGlyph`] naming it, never a tofu box.
//!
//! Label colour: white or near-black, whichever contrasts more with the tile, and at least 4.5:1 (WCAG AA
//! for normal text, stricter than the 3:1 AA asks of text this large), else [`ImageError::LowContrast`].
//! Tabs (`richmenuswitch` areas): the tab of the menu's own alias is active (its colour, a white bar under
//! the label); the others are inactive (their muted colour, a grey-blue label).
//!
//! Rendering is integer blending over `f32` glyph coverage from `ab_glyph` with no platform font or
//! hinting, so the same template gives the same pixels everywhere; a unit test holds the committed PNGs to
//! that.

use ab_glyph::{point, Font, FontRef, GlyphId, PxScale, ScaleFont};

use crate::line::message::Action;
use crate::line::richmenu::Template;

/// BIZ UDPGothic Bold, subset to the templates' label characters.
const LABEL_FONT: &[u8] =
    include_bytes!("../../templates/richmenus/fonts/BIZUDPGothic-Bold-subset.ttf");

/// Gap between tiles and around the edge, px.
const GAP: u32 = 12;
/// Tile corner radius, px (≈ 2 pt on a phone).
const RADIUS: u32 = 28;
/// Label size of a content tile, px (≈ 100 px high glyphs, ~16.7 pt on a phone).
const LABEL_PX: f32 = 112.0;
/// Label size of a tab, px: tabs are 250 px high.
const TAB_PX: f32 = 100.0;
/// The smallest size a long label may shrink to before it is rejected, px (~12.5 pt on a phone).
const MIN_PX: f32 = 84.0;
/// Horizontal padding inside a tile, each side, px.
const PAD: f32 = 44.0;
/// Line pitch of a two-line label, in ems.
const LINE_PITCH: f32 = 1.22;
/// Pictogram size (square) and its gap to the label, px: 180 px ≈ 27 pt on a phone.
const ICON_PX: f32 = 180.0;
const ICON_GAP: f32 = 40.0;
/// WCAG AA contrast for normal text.
pub const MIN_CONTRAST: f64 = 4.5;

pub const WHITE: [u8; 3] = [0xFF, 0xFF, 0xFF];
/// Near-black: softer than #000 on bright tiles, still ≥ 4.5:1 on any tile where white is not.
pub const INK: [u8; 3] = [0x1C, 0x1C, 0x1C];
/// The label colour of an inactive tab (blue-grey 700), used when it keeps 4.5:1 on the tab colour.
pub const MUTED_INK: [u8; 3] = [0x45, 0x5A, 0x64];

/// Why a menu image cannot be drawn. Every variant names the template key and the area.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ImageError {
    #[error("{key}: areas[{area}] label \"{label}\" uses {ch:?} (U+{code:04X}), which the menu font lacks; run scripts/subset-menu-font", code = *ch as u32)]
    MissingGlyph {
        key: String,
        area: usize,
        label: String,
        ch: char,
    },
    #[error("{key}: areas[{area}] icon \"{icon}\" is not one of {ICONS:?}")]
    UnknownIcon {
        key: String,
        area: usize,
        icon: String,
    },
    #[error("{key}: areas[{area}] has no label to draw")]
    NoLabel { key: String, area: usize },
    #[error("{key}: areas[{area}] label \"{label}\" does not fit its tile even on two lines at {MIN_PX} px; shorten it")]
    TooLong {
        key: String,
        area: usize,
        label: String,
    },
    #[error("{key}: areas[{area}] tile colour {colour} leaves its label a contrast of {ratio:.2}:1; WCAG AA needs {MIN_CONTRAST}:1")]
    LowContrast {
        key: String,
        area: usize,
        colour: String,
        ratio: f64,
    },
}

/// An RGB canvas, row-major, 3 bytes a pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Canvas {
    fn new(width: u32, height: u32, bg: [u8; 3]) -> Canvas {
        let mut rgb = vec![0u8; width as usize * height as usize * 3];
        for p in rgb.chunks_exact_mut(3) {
            p.copy_from_slice(&bg);
        }
        Canvas { width, height, rgb }
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Blends `c` over the pixel with `coverage` in 0..=1; outside the canvas is ignored.
    fn blend(&mut self, x: i64, y: i64, c: [u8; 3], coverage: f32) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return;
        }
        let a = (coverage.clamp(0.0, 1.0) * 255.0).round() as u32;
        if a == 0 {
            return;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        for (dst, src) in self.rgb[i..i + 3].iter_mut().zip(c) {
            *dst = ((src as u32 * a + *dst as u32 * (255 - a) + 127) / 255) as u8;
        }
    }

    /// A filled rectangle with rounded corners (radius `r`), corners anti-aliased by 4×4 supersampling.
    fn round_rect(&mut self, x0: u32, y0: u32, x1: u32, y1: u32, r: u32, c: [u8; 3]) {
        let r = r
            .min((x1.saturating_sub(x0)) / 2)
            .min((y1.saturating_sub(y0)) / 2) as i64;
        let (x0, y0, x1, y1) = (x0 as i64, y0 as i64, x1 as i64, y1 as i64);
        for y in y0..y1 {
            for x in x0..x1 {
                // The nearest corner centre, if this pixel is in a corner square.
                let cx = if x < x0 + r {
                    Some(x0 + r)
                } else if x >= x1 - r {
                    Some(x1 - r)
                } else {
                    None
                };
                let cy = if y < y0 + r {
                    Some(y0 + r)
                } else if y >= y1 - r {
                    Some(y1 - r)
                } else {
                    None
                };
                let coverage = match (cx, cy) {
                    (Some(cx), Some(cy)) => {
                        let mut inside = 0u32;
                        for sy in 0..4 {
                            for sx in 0..4 {
                                let dx = (x * 8 + sx * 2 + 1 - cx * 8) as f32 / 8.0;
                                let dy = (y * 8 + sy * 2 + 1 - cy * 8) as f32 / 8.0;
                                if dx * dx + dy * dy <= (r * r) as f32 {
                                    inside += 1;
                                }
                            }
                        }
                        inside as f32 / 16.0
                    }
                    _ => 1.0,
                };
                self.blend(x, y, c, coverage);
            }
        }
    }
}

/// `#RRGGBB` → RGB; a malformed channel reads as mid-grey (the template check reports contrast problems).
pub fn colour(hex: &str) -> [u8; 3] {
    let h = hex.trim_start_matches('#');
    let p = |i: usize| {
        h.get(i..i + 2)
            .and_then(|s| u8::from_str_radix(s, 16).ok())
            .unwrap_or(128)
    };
    [p(0), p(2), p(4)]
}

/// WCAG 2 relative luminance.
fn luminance(c: [u8; 3]) -> f64 {
    let lin = |v: u8| {
        let s = v as f64 / 255.0;
        if s <= 0.03928 {
            s / 12.92
        } else {
            ((s + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2])
}

/// WCAG 2 contrast ratio, 1..=21.
pub fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// White on dark tiles, near-black on light ones.
pub fn label_colour(tile: [u8; 3]) -> [u8; 3] {
    if contrast(WHITE, tile) >= contrast(INK, tile) {
        WHITE
    } else {
        INK
    }
}

/// What an area's tile shows, as the renderer decided it.
#[derive(Clone, Debug, PartialEq)]
pub struct TilePlan {
    /// Inner rectangle `[x0, y0, x1, y1)` of the tile.
    pub rect: [u32; 4],
    pub fill: [u8; 3],
    pub ink: [u8; 3],
    pub lines: Vec<String>,
    pub px: f32,
    /// A tab: `Some(true)` for the active one.
    pub tab: Option<bool>,
    /// The pictogram above the label, if any.
    pub icon: Option<Icon>,
}

fn font() -> FontRef<'static> {
    // The embedded subset is part of the source tree; `the_embedded_font_parses` guards it.
    FontRef::try_from_slice(LABEL_FONT).expect("the embedded menu font parses")
}

fn glyphs(font: &FontRef<'_>, s: &str) -> Result<Vec<GlyphId>, char> {
    s.chars()
        .map(|c| {
            let g = font.glyph_id(c);
            if g.0 == 0 {
                Err(c)
            } else {
                Ok(g)
            }
        })
        .collect()
}

fn line_width(font: &FontRef<'_>, px: f32, ids: &[GlyphId]) -> f32 {
    let sf = font.as_scaled(PxScale::from(px));
    let mut w = 0.0;
    for (i, g) in ids.iter().enumerate() {
        if i > 0 {
            w += sf.kern(ids[i - 1], *g);
        }
        w += sf.h_advance(*g);
    }
    w
}

/// Characters after which a Japanese label breaks naturally (a particle or the middle dot).
const BREAK_AFTER: &[char] = &['・', 'の', 'を', 'は', 'に', 'と', 'へ', '、'];
/// Characters a line must not start with (kinsoku): prolonged sound mark, small kana, punctuation.
const NO_LINE_START: &[char] = &[
    'ー', 'ッ', 'ャ', 'ュ', 'ョ', 'ァ', 'ィ', 'ゥ', 'ェ', 'ォ', 'っ', 'ゃ', 'ゅ', 'ょ', '・', '、',
    '。',
];

/// The two-line split of `label` whose longer line is shortest, preferring natural breaks.
fn split(font: &FontRef<'_>, px: f32, label: &str) -> Option<(String, String)> {
    let chars: Vec<char> = label.chars().collect();
    let ok = |i: usize| !NO_LINE_START.contains(&chars[i]);
    let natural: Vec<usize> = (1..chars.len())
        .filter(|&i| BREAK_AFTER.contains(&chars[i - 1]) && ok(i))
        .collect();
    let candidates: Vec<usize> = if natural.is_empty() {
        (1..chars.len()).filter(|&i| ok(i)).collect()
    } else {
        natural
    };
    candidates
        .into_iter()
        .map(|i| {
            let a: String = chars[..i].iter().collect();
            let b: String = chars[i..].iter().collect();
            let w = |s: &str| glyphs(font, s).map_or(f32::MAX, |g| line_width(font, px, &g));
            (w(&a).max(w(&b)), a, b)
        })
        .min_by(|x, y| x.0.total_cmp(&y.0))
        .map(|(_, a, b)| (a, b))
}

/// Lays out every tile of `t`: colours, label lines and size. Pure; the errors name the offending area.
pub fn plan(t: &Template) -> Result<Vec<TilePlan>, ImageError> {
    let font = font();
    let key = &t.key;
    let mut out = Vec::new();
    for (i, (area, fill)) in t.richmenu.areas.iter().zip(&t.tiles).enumerate() {
        let label = area.action.label().ok_or_else(|| ImageError::NoLabel {
            key: key.clone(),
            area: i,
        })?;
        glyphs(&font, label).map_err(|ch| ImageError::MissingGlyph {
            key: key.clone(),
            area: i,
            label: label.to_string(),
            ch,
        })?;
        let tab = match &area.action {
            Action::RichMenuSwitch {
                rich_menu_alias_id, ..
            } => Some(*rich_menu_alias_id == t.alias),
            _ => None,
        };
        let icon = match t.icons.get(i).map(String::as_str) {
            None | Some("") => None,
            Some(name) => Some(Icon::parse(name).ok_or_else(|| ImageError::UnknownIcon {
                key: key.clone(),
                area: i,
                icon: name.to_string(),
            })?),
        };
        let fill_rgb = colour(fill);
        let ink = match tab {
            Some(false) if contrast(MUTED_INK, fill_rgb) >= MIN_CONTRAST => MUTED_INK,
            _ => label_colour(fill_rgb),
        };
        let ratio = contrast(ink, fill_rgb);
        if ratio < MIN_CONTRAST {
            return Err(ImageError::LowContrast {
                key: key.clone(),
                area: i,
                colour: fill.clone(),
                ratio,
            });
        }
        let b = area.bounds;
        let rect = [
            b.x + GAP,
            b.y + GAP,
            (b.x + b.width).saturating_sub(GAP),
            (b.y + b.height).saturating_sub(GAP),
        ];
        let inner_w = (rect[2] - rect[0]) as f32 - 2.0 * PAD;
        let icon_h = if icon.is_some() {
            ICON_PX + ICON_GAP
        } else {
            0.0
        };
        let inner_h = (rect[3] - rect[1]) as f32 - icon_h;
        let base = if tab.is_some() { TAB_PX } else { LABEL_PX };
        let fits_one = |px: f32| {
            glyphs(&font, label).is_ok_and(|g| line_width(&font, px, &g) <= inner_w)
                && px * 1.1 <= inner_h
        };
        let fits_two = |px: f32| {
            split(&font, px, label).filter(|(a, b)| {
                let w = |s: &str| glyphs(&font, s).map_or(f32::MAX, |g| line_width(&font, px, &g));
                w(a) <= inner_w && w(b) <= inner_w && px * (1.1 + LINE_PITCH) <= inner_h
            })
        };
        // One line at (nearly) full size; else two lines, shrinking in 4-px steps down to MIN_PX.
        let mut chosen = None;
        let mut px = base;
        while px >= base * 0.9 {
            if fits_one(px) {
                chosen = Some((px, vec![label.to_string()]));
                break;
            }
            px -= 4.0;
        }
        let mut px = base;
        while chosen.is_none() && px >= MIN_PX {
            if let Some((a, b)) = fits_two(px) {
                chosen = Some((px, vec![a, b]));
            } else if fits_one(px) {
                chosen = Some((px, vec![label.to_string()]));
            }
            px -= 4.0;
        }
        let Some((px, lines)) = chosen else {
            return Err(ImageError::TooLong {
                key: key.clone(),
                area: i,
                label: label.to_string(),
            });
        };
        out.push(TilePlan {
            rect,
            fill: fill_rgb,
            ink,
            lines,
            px,
            tab,
            icon,
        });
    }
    Ok(out)
}

impl TilePlan {
    /// Where things go: the label's horizontal centre, the pictogram's top-left corner (a square of
    /// [`ICON_PX`]), and the label's vertical centre. Icon and label form one block centred in the tile; an
    /// active tab's label sits 8 px higher to clear its bar.
    pub fn anchors(&self) -> (f32, Option<(f32, f32)>, f32) {
        let [x0, y0, x1, y1] = self.rect;
        let cx = (x0 + x1) as f32 / 2.0;
        let mut cy = (y0 + y1) as f32 / 2.0;
        if self.tab == Some(true) {
            cy -= 8.0;
        }
        if self.icon.is_none() {
            return (cx, None, cy);
        }
        let n = self.lines.len() as f32;
        let text_h = self.px * (1.0 + (n - 1.0) * LINE_PITCH);
        let top = cy - (ICON_PX + ICON_GAP + text_h) / 2.0;
        (
            cx,
            Some((cx - ICON_PX / 2.0, top)),
            top + ICON_PX + ICON_GAP + text_h / 2.0,
        )
    }
}

/// Draws `lines` centred on (`cx`, `cy`).
fn draw_text(
    canvas: &mut Canvas,
    font: &FontRef<'_>,
    lines: &[String],
    px: f32,
    cx: f32,
    cy: f32,
    ink: [u8; 3],
) {
    let scale = PxScale::from(px);
    let sf = font.as_scaled(scale);
    // The centre of a line's ascent–descent box sits `(ascent + descent) / 2` above its baseline.
    let half_box = (sf.ascent() + sf.descent()) / 2.0;
    let pitch = px * LINE_PITCH;
    let n = lines.len() as f32;
    for (k, line) in lines.iter().enumerate() {
        let Ok(ids) = glyphs(font, line) else {
            continue;
        };
        let baseline = cy + (k as f32 - (n - 1.0) / 2.0) * pitch + half_box;
        let mut x = cx - line_width(font, px, &ids) / 2.0;
        for (j, id) in ids.iter().enumerate() {
            if j > 0 {
                x += sf.kern(ids[j - 1], *id);
            }
            let g = id.with_scale_and_position(scale, point(x, baseline));
            if let Some(og) = font.outline_glyph(g) {
                let b = og.px_bounds();
                og.draw(|gx, gy, cov| {
                    canvas.blend(
                        b.min.x as i64 + gx as i64,
                        b.min.y as i64 + gy as i64,
                        ink,
                        cov,
                    )
                });
            }
            x += sf.h_advance(*id);
        }
    }
}

/// Renders a template's image: the background, each area a rounded tile of its colour with its label.
pub fn render(t: &Template) -> Result<Canvas, ImageError> {
    let tiles = plan(t)?;
    let font = font();
    let mut c = Canvas::new(
        t.richmenu.size.width,
        t.richmenu.size.height,
        colour(&t.background),
    );
    for tile in &tiles {
        let [x0, y0, x1, y1] = tile.rect;
        c.round_rect(x0, y0, x1, y1, RADIUS, tile.fill);
        let (cx, icon_at, cy) = tile.anchors();
        if tile.tab == Some(true) {
            // The active tab's bar: 12 px, 40 % of the tab's width, under the label.
            let w = (x1 - x0) * 2 / 5;
            let bx = x0 + (x1 - x0 - w) / 2;
            c.round_rect(bx, y1 - 34, bx + w, y1 - 22, 6, tile.ink);
        }
        if let (Some(icon), Some((ix, iy))) = (tile.icon, icon_at) {
            icon.draw(&mut c, ix, iy, ICON_PX, tile.ink);
        }
        draw_text(&mut c, &font, &tile.lines, tile.px, cx, cy, tile.ink);
    }
    Ok(c)
}

// ---------------------------------------------------------------- pictograms

/// The pictogram names a template's `icons` may use.
pub const ICONS: &[&str] = &[
    "pin",
    "alert",
    "megaphone",
    "map",
    "gauge",
    "bell",
    "form",
    "chat",
    "trash",
    "person",
];

/// A simple pictogram drawn from geometric primitives in a unit square (y down), filled in the label colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icon {
    /// Map pin: shelters, plow map, district registration.
    Pin,
    /// Warning triangle with "!": warnings, road damage.
    Alert,
    /// Megaphone: city announcements.
    Megaphone,
    /// Folded map: hazard map.
    Map,
    /// Gauge with needle: キキクル (risk levels).
    Gauge,
    /// Bell: notification settings.
    Bell,
    /// Form with lines: procedures.
    Form,
    /// Speech bubble: enquiries.
    Chat,
    /// Bin: rubbish collection.
    Trash,
    /// Person: safety reports.
    Person,
}

fn in_circle(x: f32, y: f32, cx: f32, cy: f32, r: f32) -> bool {
    (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r
}

fn in_rect(x: f32, y: f32, x0: f32, y0: f32, x1: f32, y1: f32) -> bool {
    x >= x0 && x <= x1 && y >= y0 && y <= y1
}

/// Inside the rectangle `[x0, y0, x1, y1]` with corners rounded to radius `r`.
fn in_round_rect(x: f32, y: f32, [x0, y0, x1, y1]: [f32; 4], r: f32) -> bool {
    in_circle(x, y, x.clamp(x0 + r, x1 - r), y.clamp(y0 + r, y1 - r), r)
}

/// Even-odd point-in-polygon.
fn in_poly(x: f32, y: f32, pts: &[(f32, f32)]) -> bool {
    let mut inside = false;
    let mut j = pts.len() - 1;
    for i in 0..pts.len() {
        let (xi, yi) = pts[i];
        let (xj, yj) = pts[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Within `w / 2` of the segment (x0, y0)–(x1, y1).
fn near_segment(x: f32, y: f32, (x0, y0): (f32, f32), (x1, y1): (f32, f32), w: f32) -> bool {
    let (dx, dy) = (x1 - x0, y1 - y0);
    let t = (((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
    in_circle(x, y, x0 + t * dx, y0 + t * dy, w / 2.0)
}

impl Icon {
    pub fn parse(s: &str) -> Option<Icon> {
        Some(match s {
            "pin" => Icon::Pin,
            "alert" => Icon::Alert,
            "megaphone" => Icon::Megaphone,
            "map" => Icon::Map,
            "gauge" => Icon::Gauge,
            "bell" => Icon::Bell,
            "form" => Icon::Form,
            "chat" => Icon::Chat,
            "trash" => Icon::Trash,
            "person" => Icon::Person,
            _ => return None,
        })
    }

    /// Whether the unit-square point (x, y) is inside the pictogram.
    fn contains(self, x: f32, y: f32) -> bool {
        match self {
            Icon::Pin => {
                (in_circle(x, y, 0.5, 0.36, 0.31)
                    || in_poly(x, y, &[(0.2, 0.44), (0.8, 0.44), (0.5, 0.98)]))
                    && !in_circle(x, y, 0.5, 0.36, 0.12)
            }
            Icon::Alert => {
                in_poly(x, y, &[(0.5, 0.04), (0.98, 0.92), (0.02, 0.92)])
                    && !in_rect(x, y, 0.445, 0.34, 0.555, 0.64)
                    && !in_circle(x, y, 0.5, 0.77, 0.06)
            }
            Icon::Megaphone => {
                in_poly(
                    x,
                    y,
                    &[
                        (0.06, 0.36),
                        (0.34, 0.36),
                        (0.82, 0.1),
                        (0.82, 0.8),
                        (0.34, 0.58),
                        (0.06, 0.58),
                    ],
                ) || in_poly(x, y, &[(0.18, 0.58), (0.34, 0.58), (0.4, 0.9), (0.26, 0.9)])
                    || in_rect(x, y, 0.87, 0.38, 0.97, 0.52)
            }
            Icon::Map => {
                in_poly(
                    x,
                    y,
                    &[
                        (0.04, 0.16),
                        (0.35, 0.06),
                        (0.65, 0.16),
                        (0.96, 0.06),
                        (0.96, 0.84),
                        (0.65, 0.94),
                        (0.35, 0.84),
                        (0.04, 0.94),
                    ],
                ) && !near_segment(x, y, (0.35, 0.06), (0.35, 0.84), 0.05)
                    && !near_segment(x, y, (0.65, 0.16), (0.65, 0.94), 0.05)
            }
            Icon::Gauge => {
                // A half ring of three coloured-level segments (gaps at 60° and 120°) and a needle.
                let ring = in_circle(x, y, 0.5, 0.8, 0.5) && !in_circle(x, y, 0.5, 0.8, 0.33);
                let gap = |deg: f32| {
                    let a = deg.to_radians();
                    near_segment(
                        x,
                        y,
                        (0.5, 0.8),
                        (0.5 - 0.6 * a.cos(), 0.8 - 0.6 * a.sin()),
                        0.05,
                    )
                };
                (ring && y <= 0.8 && !gap(60.0) && !gap(120.0))
                    || near_segment(x, y, (0.5, 0.8), (0.74, 0.5), 0.09)
                    || in_circle(x, y, 0.5, 0.8, 0.1)
            }
            Icon::Bell => {
                (in_circle(x, y, 0.5, 0.42, 0.3) && y <= 0.42)
                    || in_poly(
                        x,
                        y,
                        &[(0.2, 0.42), (0.8, 0.42), (0.86, 0.72), (0.14, 0.72)],
                    )
                    || in_rect(x, y, 0.06, 0.7, 0.94, 0.8)
                    || in_circle(x, y, 0.5, 0.87, 0.09)
                    || in_circle(x, y, 0.5, 0.1, 0.06)
            }
            Icon::Form => {
                in_rect(x, y, 0.16, 0.04, 0.84, 0.96)
                    && !(0..4).any(|k| {
                        let y0 = 0.2 + k as f32 * 0.18;
                        in_rect(x, y, 0.28, y0, if k == 3 { 0.56 } else { 0.72 }, y0 + 0.07)
                    })
            }
            Icon::Chat => {
                let bubble = in_round_rect(x, y, [0.04, 0.1, 0.96, 0.72], 0.1);
                (bubble || in_poly(x, y, &[(0.22, 0.7), (0.44, 0.7), (0.2, 0.94)]))
                    && ![0.3, 0.5, 0.7]
                        .iter()
                        .any(|&cx| in_circle(x, y, cx, 0.41, 0.07))
            }
            Icon::Trash => {
                let body = in_poly(
                    x,
                    y,
                    &[(0.18, 0.28), (0.82, 0.28), (0.76, 0.96), (0.24, 0.96)],
                ) && ![0.38, 0.5, 0.62]
                    .iter()
                    .any(|&sx| in_rect(x, y, sx - 0.03, 0.4, sx + 0.03, 0.84));
                body || in_rect(x, y, 0.1, 0.14, 0.9, 0.22)
                    || (in_rect(x, y, 0.36, 0.04, 0.64, 0.14)
                        && !in_rect(x, y, 0.43, 0.08, 0.57, 0.14))
            }
            Icon::Person => {
                in_circle(x, y, 0.5, 0.26, 0.2)
                    || (in_circle(x, y, 0.5, 0.96, 0.42)
                        && y <= 0.96
                        && !in_circle(x, y, 0.5, 0.26, 0.25))
            }
        }
    }

    /// Fills the pictogram into the `size`-px square at (`x0`, `y0`), anti-aliased by 4×4 supersampling.
    fn draw(self, c: &mut Canvas, x0: f32, y0: f32, size: f32, ink: [u8; 3]) {
        let (px0, py0) = (x0.floor() as i64, y0.floor() as i64);
        let n = size.ceil() as i64 + 1;
        for py in py0..py0 + n {
            for px in px0..px0 + n {
                let mut inside = 0u32;
                for sy in 0..4 {
                    for sx in 0..4 {
                        let ux = (px as f32 + (sx as f32 + 0.5) / 4.0 - x0) / size;
                        let uy = (py as f32 + (sy as f32 + 0.5) / 4.0 - y0) / size;
                        if (0.0..=1.0).contains(&ux)
                            && (0.0..=1.0).contains(&uy)
                            && self.contains(ux, uy)
                        {
                            inside += 1;
                        }
                    }
                }
                if inside > 0 {
                    c.blend(px, py, ink, inside as f32 / 16.0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::richmenu::embedded_templates;

    fn templates() -> Vec<Template> {
        embedded_templates("https://bousai.example.lg.jp")
            .unwrap()
            .into_iter()
            .map(|t| t.template)
            .collect()
    }

    fn template(key: &str) -> Template {
        templates().into_iter().find(|t| t.key == key).unwrap()
    }

    fn set_label(t: &mut Template, area: usize, text: &str) {
        match &mut t.richmenu.areas[area].action {
            Action::Uri { label, .. }
            | Action::Postback { label, .. }
            | Action::RichMenuSwitch { label, .. } => *label = Some(text.to_string()),
            other => panic!("unexpected action {other:?}"),
        }
    }

    /// Pixels of exactly `c` in `[x0, y0, x1, y1)`.
    fn count(c: &Canvas, [x0, y0, x1, y1]: [u32; 4], colour: [u8; 3]) -> usize {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| c.pixel(x, y) == colour)
            .count()
    }

    #[test]
    fn the_embedded_font_parses() {
        assert!(FontRef::try_from_slice(LABEL_FONT).is_ok());
    }

    #[test]
    fn every_tile_of_every_menu_shows_its_label_in_the_label_colour_at_its_centre() {
        for t in templates() {
            let canvas = render(&t).unwrap();
            let tiles = plan(&t).unwrap();
            assert_eq!(tiles.len(), t.richmenu.areas.len());
            for (i, tile) in tiles.iter().enumerate() {
                let [x0, y0, x1, y1] = tile.rect;
                let (w, h) = (x1 - x0, y1 - y0);
                // The middle 80 % × 60 % of the tile holds the label …
                let centre = [x0 + w / 10, y0 + h / 5, x1 - w / 10, y1 - h / 5];
                let area = ((centre[2] - centre[0]) * (centre[3] - centre[1])) as usize;
                let ink = count(&canvas, centre, tile.ink);
                assert!(
                    ink * 100 >= area,
                    "{} areas[{i}] {:?}: {ink} label pixels of {area}",
                    t.key,
                    tile.lines
                );
                // … on the tile colour, which still fills most of the tile.
                assert!(count(&canvas, tile.rect, tile.fill) * 2 > (w * h) as usize);
                // The top-left corner region (inside the rounding) carries no label.
                let corner = [x0 + RADIUS, y0 + RADIUS / 2, x0 + 2 * RADIUS, y0 + RADIUS];
                assert_eq!(count(&canvas, corner, tile.ink), 0, "{} areas[{i}]", t.key);
            }
        }
    }

    #[test]
    fn a_different_label_draws_different_pixels_in_its_own_tile_only() {
        let a = template("emergency");
        let mut b = a.clone();
        set_label(&mut b, 2, "ハザードマップ");
        let (ca, cb) = (render(&a).unwrap(), render(&b).unwrap());
        let tiles = plan(&a).unwrap();
        for (i, tile) in tiles.iter().enumerate() {
            let [x0, y0, x1, y1] = tile.rect;
            let differs = (y0..y1).any(|y| (x0..x1).any(|x| ca.pixel(x, y) != cb.pixel(x, y)));
            assert_eq!(differs, i == 2, "areas[{i}]");
        }
    }

    #[test]
    fn every_label_meets_wcag_aa_and_is_phone_readable() {
        for t in templates() {
            for (i, tile) in plan(&t).unwrap().iter().enumerate() {
                let ratio = contrast(tile.ink, tile.fill);
                assert!(ratio >= MIN_CONTRAST, "{} areas[{i}]: {ratio:.2}:1", t.key);
                // 84–112 px on the 2500-px image is 12.5–17 pt on a 375-pt-wide phone screen.
                assert!(
                    (MIN_PX..=LABEL_PX).contains(&tile.px),
                    "{} areas[{i}]",
                    t.key
                );
                assert!(tile.lines.len() <= 2);
                let joined: String = tile.lines.concat();
                assert_eq!(Some(joined.as_str()), t.richmenu.areas[i].action.label());
            }
        }
        assert_eq!(label_colour(colour("#C62828")), WHITE);
        assert_eq!(label_colour(colour("#FFB300")), INK);
    }

    #[test]
    fn the_active_tab_is_strong_with_a_bar_and_the_inactive_tab_is_muted() {
        let t = template("normal-a");
        let tiles = plan(&t).unwrap();
        assert_eq!(tiles[0].tab, Some(true));
        assert_eq!(tiles[1].tab, Some(false));
        assert_eq!(tiles[0].ink, WHITE);
        assert_eq!(tiles[1].ink, MUTED_INK);
        // Active = saturated and dark; inactive = light grey.
        assert!(luminance(tiles[0].fill) < 0.2 && luminance(tiles[1].fill) > 0.5);
        let c = render(&t).unwrap();
        let bar = |r: [u32; 4], ink| count(&c, [r[0], r[3] - 34, r[2], r[3] - 22], ink);
        assert!(bar(tiles[0].rect, tiles[0].ink) > 3000);
        assert_eq!(bar(tiles[1].rect, tiles[1].ink), 0);
        // normal-b is the same pair of tabs with the other one active.
        let b = plan(&template("normal-b")).unwrap();
        assert_eq!((b[0].tab, b[1].tab), (Some(false), Some(true)));
    }

    #[test]
    fn long_labels_break_after_a_particle_or_the_middle_dot() {
        let f = font();
        let s = |l: &str| split(&f, LABEL_PX, l).unwrap();
        assert_eq!(
            s("市からのお知らせ"),
            ("市からの".into(), "お知らせ".into())
        );
        assert_eq!(
            s("安否・被害の報告"),
            ("安否・".into(), "被害の報告".into())
        );
        assert_eq!(
            s("道路の損傷を報告"),
            ("道路の".into(), "損傷を報告".into())
        );
        // Without a particle, never before a prolonged sound mark or a small kana.
        let (a, b) = s("ハザードマップ");
        assert!(!b.starts_with('ー') && !b.starts_with('ッ'), "{a}/{b}");
    }

    #[test]
    fn a_label_with_a_character_missing_from_the_font_is_rejected_naming_it() {
        let mut t = template("emergency");
        set_label(&mut t, 0, "避難場所マップ");
        let e = render(&t).unwrap_err();
        assert_eq!(
            e,
            ImageError::MissingGlyph {
                key: "emergency".into(),
                area: 0,
                label: "避難場所マップ".into(),
                ch: '場'
            }
        );
        let msg = e.to_string();
        assert!(msg.contains("'場' (U+5834)"), "{msg}");
        assert!(msg.contains("scripts/subset-menu-font"), "{msg}");
        // The PNG step reports the same error instead of writing a tofu box.
        assert!(crate::line::richmenu::render_png(&t).is_err());
    }

    #[test]
    fn a_tile_colour_no_label_colour_can_read_on_is_rejected() {
        let mut t = template("normal-a");
        t.tiles[3] = "#808080".into();
        match plan(&t) {
            Err(ImageError::LowContrast { area: 3, ratio, .. }) => assert!(ratio < MIN_CONTRAST),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_label_too_long_for_two_lines_is_rejected() {
        let mut t = template("normal-a");
        set_label(&mut t, 2, "市からのお知らせ市からのお知らせ");
        assert!(matches!(plan(&t), Err(ImageError::TooLong { area: 2, .. })));
    }

    #[test]
    fn tiles_with_an_icon_show_it_above_the_label_and_unknown_icons_are_rejected() {
        let mut drawn = 0;
        for t in templates() {
            let c = render(&t).unwrap();
            for (i, tile) in plan(&t).unwrap().iter().enumerate() {
                let (_, at, label_cy) = tile.anchors();
                let (Some(_), Some((ix, iy))) = (tile.icon, at) else {
                    assert!(t.icons.get(i).is_none_or(|s| s.is_empty()));
                    continue;
                };
                let sq = [
                    ix as u32,
                    iy as u32,
                    (ix + ICON_PX) as u32,
                    (iy + ICON_PX) as u32,
                ];
                let ink = count(&c, sq, tile.ink);
                let area = (ICON_PX * ICON_PX) as usize;
                assert!(
                    ink * 10 >= area && ink * 10 <= area * 8,
                    "{} areas[{i}]: {ink}",
                    t.key
                );
                assert!(iy + ICON_PX < label_cy, "{} areas[{i}]", t.key);
                drawn += 1;
            }
        }
        assert!(drawn >= 16, "{drawn}");
        for name in ICONS {
            assert!(Icon::parse(name).is_some(), "{name}");
        }
        let mut t = template("emergency");
        t.icons[1] = "siren".into();
        let e = plan(&t).unwrap_err().to_string();
        assert!(e.contains("emergency: areas[1] icon \"siren\""), "{e}");
    }

    #[test]
    fn rendering_is_deterministic() {
        let t = template("normal-b");
        assert_eq!(render(&t).unwrap(), render(&t).unwrap());
    }
}
