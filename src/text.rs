//! Japanese text as cities have it.
//!
//! * **CSV files in UTF-8 or Shift_JIS.** Spreadsheets saved by Excel on Japanese Windows are CP932
//!   (Microsoft's Shift_JIS, with the NEC and IBM extensions such as ①, ㈱ and 髙); others are UTF-8, with or
//!   without a BOM. [`decode_csv`] reads both (`encoding_rs`): a UTF-8 BOM or valid UTF-8 is UTF-8, anything
//!   else is decoded as CP932 (the WHATWG `Shift_JIS` encoding is CP932), and the caller says which was used.
//! * **CSV exports Excel opens.** Excel reads a CSV as CP932 unless it starts with a UTF-8 BOM, so every
//!   export starts with [`UTF8_BOM`]; the imports skip it.
//! * **Names compared the way people write them.** [`name_key`] makes district and town names comparable:
//!   NFKC (full-width Latin letters and digits → ASCII, half-width katakana → full-width), hiragana →
//!   katakana (`wana_kana`), the place-name particle ケ/ヶ/が written one way (霞ケ関 = 霞ヶ関 = 霞が関),
//!   spaces dropped, Arabic numbers → kanji numbers (北1条西3丁目 = 北一条西三丁目).

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization as _;

/// Written first by every CSV export so that Excel reads it as UTF-8.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The encoding a CSV file was read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsvEncoding {
    /// UTF-8 starting with a byte-order mark (Excel's 「CSV UTF-8」).
    Utf8Bom,
    Utf8,
    /// Shift_JIS as Windows writes it (CP932, Excel's 「CSV（コンマ区切り）」 on Japanese Windows).
    ShiftJis,
}

impl CsvEncoding {
    /// For messages: `UTF-8`, `UTF-8 (BOM)`, `Shift_JIS (CP932)`.
    pub fn label(self) -> &'static str {
        match self {
            CsvEncoding::Utf8Bom => "UTF-8 (BOM)",
            CsvEncoding::Utf8 => "UTF-8",
            CsvEncoding::ShiftJis => "Shift_JIS (CP932)",
        }
    }
}

/// A CSV file's text and the encoding it was read in. Lines are where they were in the file (every encoding
/// here keeps `\n` as one character), so line numbers in messages match what the operator sees.
#[derive(Debug)]
pub struct DecodedCsv<'a> {
    pub text: Cow<'a, str>,
    pub encoding: CsvEncoding,
}

/// Decodes a CSV file: UTF-8 with or without a BOM, else Shift_JIS (CP932). `Err` names the first line that
/// is neither, in Japanese-operator terms.
pub fn decode_csv(bytes: &[u8]) -> Result<DecodedCsv<'_>, String> {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err("the file is UTF-16 (Excel's 「Unicode テキスト」); save it as 「CSV UTF-8」 or 「CSV（コンマ区切り）」".into());
    }
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        return match std::str::from_utf8(rest) {
            Ok(text) => Ok(DecodedCsv {
                text: Cow::Borrowed(text),
                encoding: CsvEncoding::Utf8Bom,
            }),
            Err(e) => Err(format!(
                "the file starts with a UTF-8 byte-order mark but line {} is not UTF-8; save the whole file as 「CSV UTF-8」",
                line_at(rest, e.valid_up_to())
            )),
        };
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(DecodedCsv {
            text: Cow::Borrowed(text),
            encoding: CsvEncoding::Utf8,
        });
    }
    match encoding_rs::SHIFT_JIS.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(text) => Ok(DecodedCsv {
            text,
            encoding: CsvEncoding::ShiftJis,
        }),
        None => {
            let (lossy, _) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(bytes);
            let bad = lossy.find('\u{FFFD}').unwrap_or(0);
            Err(format!(
                "line {} is neither UTF-8 nor Shift_JIS (CP932); save the file as 「CSV UTF-8」 or 「CSV（コンマ区切り）」",
                line_at(lossy.as_bytes(), bad)
            ))
        }
    }
}

/// The 1-based line of byte `offset`.
fn line_at(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Whether `c` is a kanji (CJK ideograph) or the repetition mark 々.
fn is_kanji(c: char) -> bool {
    c == '々' || wana_kana::utils::is_char_kanji::is_char_kanji(c)
}

/// Whether `c` is a katakana letter (hiragana has become katakana when this is asked).
fn is_katakana(c: char) -> bool {
    ('\u{30A1}'..='\u{30FA}').contains(&c)
}

/// The comparison key of a district or town name (see the module doc). Two names that a resident or a
/// clerk would call the same have the same key; the key is for comparing, never for display.
pub fn name_key(name: &str) -> String {
    let nfkc: String = name.nfkc().collect();
    let kata = wana_kana::utils::hiragana_to_katakana::hiragana_to_katakana(&nfkc);
    let chars: Vec<char> = kata.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = String::with_capacity(kata.len());
    let mut digits = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        let c = match c {
            // 桜ケ丘, 桜ヶ丘; 霞が関, ひばりが丘 (が became ガ above) after a kanji or kana, before a kanji.
            'ケ' | 'ヶ' | 'ヵ' if after.is_some_and(is_kanji) => 'ヶ',
            'ガ' if before.is_some_and(|b| is_kanji(b) || is_katakana(b))
                && after.is_some_and(is_kanji) =>
            {
                'ヶ'
            }
            c => c.to_ascii_lowercase(),
        };
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        push_number(&mut digits, &mut out);
        out.push(c);
    }
    push_number(&mut digits, &mut out);
    out
}

/// Moves a run of Arabic digits into `out` as a kanji number (`28` → 二十八; 100 and above stay digits).
fn push_number(digits: &mut String, out: &mut String) {
    if digits.is_empty() {
        return;
    }
    match digits.parse::<u32>() {
        Ok(n) if n < 100 => out.push_str(&kanji_number(n)),
        _ => out.push_str(digits),
    }
    digits.clear();
}

fn kanji_number(n: u32) -> String {
    const D: [&str; 10] = ["〇", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    let (tens, ones) = (n / 10, n % 10);
    let mut s = String::new();
    if tens > 1 {
        s.push_str(D[tens as usize]);
    }
    if tens > 0 {
        s.push('十');
    }
    if ones > 0 || n == 0 {
        s.push_str(D[ones as usize]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_written_differently_have_one_key() {
        for (a, b) in [
            ("北1条西3丁目", "北一条西三丁目"),
            ("大通西２８丁目", "大通西二十八丁目"),
            ("南 10 条", "南十条"),
            ("中央区　大通西1丁目", "中央区大通西一丁目"),
            ("霞ケ関", "霞ヶ関"),
            ("霞が関", "霞ヶ関"),
            ("あかねケ丘", "あかねヶ丘"),
            ("桜ｹ丘", "桜ヶ丘"),
            ("宮の森", "宮ノ森"),
            ("ひばりが丘", "ヒバリヶ丘"),
            ("ﾐﾄﾞﾘ町", "ミドリ町"),
            ("ＪＲ駅前", "jr駅前"),
        ] {
            assert_eq!(name_key(a), name_key(b), "{a} / {b}");
        }
    }

    #[test]
    fn different_names_keep_different_keys() {
        for (a, b) in [
            ("北一条西", "北二条西"),
            ("大通西1丁目", "大通西11丁目"),
            ("ケーキ通", "ガーキ通"),
            ("ガ丘", "ケ丘"),
            ("桑園", "桑園駅"),
        ] {
            assert_ne!(name_key(a), name_key(b), "{a} / {b}");
        }
        assert_eq!(name_key("北1条西3丁目"), "北一条西三丁目");
        assert_eq!(name_key("120番地"), "120番地", "large numbers stay digits");
    }

    #[test]
    fn utf8_with_and_without_bom_and_shift_jis_are_read_and_named() {
        let text = "user_id,district\nU1,北一条西一丁目\n";
        let d = decode_csv(text.as_bytes()).unwrap();
        assert_eq!((d.text.as_ref(), d.encoding), (text, CsvEncoding::Utf8));
        let with_bom = [UTF8_BOM, text.as_bytes()].concat();
        let d = decode_csv(&with_bom).unwrap();
        assert_eq!((d.text.as_ref(), d.encoding), (text, CsvEncoding::Utf8Bom));
        // CP932, including characters plain Shift_JIS lacks (NEC row 13 ①, IBM extension 髙).
        let cp932_text = "名称,備考\n髙橋公園,①\n";
        let (sjis, _, unmappable) = encoding_rs::SHIFT_JIS.encode(cp932_text);
        assert!(!unmappable);
        assert!(std::str::from_utf8(&sjis).is_err(), "really not UTF-8");
        let d = decode_csv(&sjis).unwrap();
        assert_eq!(
            (d.text.as_ref(), d.encoding),
            (cp932_text, CsvEncoding::ShiftJis)
        );
        assert_eq!(d.encoding.label(), "Shift_JIS (CP932)");
    }

    #[test]
    fn bytes_that_are_no_known_encoding_are_refused_with_the_line() {
        let e = decode_csv(b"a,b\nok,ok\n\x82\xff,x\n").unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        let e = decode_csv(&[UTF8_BOM, b"a\n\xff\n".as_slice()].concat()).unwrap_err();
        assert!(e.contains("line 2") && e.contains("byte-order mark"), "{e}");
        let e = decode_csv(b"\xFF\xFEa\x00").unwrap_err();
        assert!(e.contains("UTF-16"), "{e}");
    }
}
