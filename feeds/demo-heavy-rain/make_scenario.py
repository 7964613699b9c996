#!/usr/bin/env python3
"""Builds the constructed heavy-rain scenario for the demo city (札幌市) in the official JMA XML format.

CONSTRUCTED SCENARIO — these telegrams were never issued by JMA. They follow the structure of JMA's official
samples `15_17_01_251222_VPWW55.xml` / `…VPWW56.xml` (気象警報・注意報（Ｒ０６）), with real area and warning
codes from JMA's code tables, for the municipalities of 石狩地方. The replay server shifts every timestamp so
the scenario happens "now".

Run: python3 feeds/demo-heavy-rain/make_scenario.py   (rewrites telegrams/ and scenario.toml)
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DAY = "2026-09-12"

MUNIS = [  # (code, name, まとめ地域)
    ("0110000", "札幌市", "016012"), ("0121700", "江別市", "016012"),
    ("0122400", "千歳市", "016013"), ("0123100", "恵庭市", "016013"), ("0123400", "北広島市", "016013"),
    ("0123500", "石狩市", "016011"), ("0130300", "当別町", "016011"), ("0130400", "新篠津村", "016011"),
]
MATOME = {"016011": "石狩北部", "016012": "石狩中部", "016013": "石狩南部"}
NAMES = {"10": "レベル２大雨注意報", "03": "レベル３大雨警報", "43": "レベル４大雨危険警報", "33": "レベル５大雨特別警報",
         "29": "レベル２土砂災害注意報", "09": "レベル３土砂災害警報", "49": "レベル４土砂災害危険警報", "39": "レベル５土砂災害特別警報"}
RANK = {"10": 2, "29": 2, "03": 3, "09": 3, "43": 4, "49": 4, "33": 5, "39": 5}

# Each step: (time JST, telegram type, {municipality: (code or None, status, last code or None)}, headline)
STEPS = [
    ("06:00", "VPWW55", {"0110000": ("10", "発表", None), "0121700": ("10", "発表", None)},
     "石狩中部では、低い土地の浸水や河川の増水に注意してください。"),
    ("08:30", "VPWW55", {"0110000": ("03", "発表", "10"), "0121700": ("10", "継続", "10")},
     "札幌市では、低い土地の浸水や河川の増水に警戒してください。"),
    ("10:10", "VPWW56", {"0110000": ("49", "発表", None), "0121700": ("29", "発表", None)},
     "札幌市では、土砂災害の危険度が高まっています。危険な場所から全員避難してください。"),
    ("11:40", "VPWW55", {"0110000": ("33", "発表", "03"), "0121700": ("03", "発表", "10")},
     "札幌市に大雨特別警報を発表しました。これまでに経験したことのないような大雨となっています。命の危険が迫っています。直ちに身の安全を確保してください。"),
    ("14:20", "VPWW55", {"0110000": ("03", "特別警報から警報", "33"), "0121700": ("03", "継続", "03")},
     "札幌市の大雨特別警報を警報に切り替えました。引き続き低い土地の浸水や河川の増水に警戒してください。"),
    ("16:00", "VPWW56", {"0110000": ("29", "警報から注意報", "49"), "0121700": ("29", "継続", "29")},
     "札幌市の土砂災害危険警報を注意報に切り替えました。"),
    ("17:30", "VPWW55", {"0110000": ("10", "警報から注意報", "03"), "0121700": ("10", "警報から注意報", "03")},
     "石狩中部では、低い土地の浸水に注意してください。"),
    ("20:00", "VPWW55", {"0110000": (None, "解除", "10"), "0121700": (None, "解除", "10")},
     "石狩地方の大雨注意報を解除しました。"),
    ("20:00", "VPWW56", {"0110000": (None, "解除", "29"), "0121700": (None, "解除", "29")},
     "石狩地方の土砂災害注意報を解除しました。"),
]

TITLE = {"VPWW55": ("気象警報・注意報（Ｒ０６）（大雨）", "大雨警報・注意報"),
         "VPWW56": ("気象警報・注意報（Ｒ０６）（土砂）", "土砂災害警報・注意報")}


def kind_xml(code, status, last):
    if code is None and status == "解除":
        code = last
    if code is None:
        return "<Kind>\n<Status>発表警報・注意報はなし</Status>\n</Kind>\n"
    s = f"<Kind>\n<Name>{NAMES[code]}</Name>\n<Code>{code}</Code>\n<Status>{status}</Status>\n"
    if last:
        s += f"<LastKind>\n<Name>{NAMES[last]}</Name>\n<Code>{last}</Code>\n</LastKind>\n"
    return s + "</Kind>\n"


def block(wtype, areas):
    """areas: [(code, name, (code, status, last))]"""
    out = f'<Warning type="{wtype}">\n'
    for code, name, st in areas:
        out += "<Item>\n" + kind_xml(*st) + f"<Area>\n<Name>{name}</Name>\n<Code>{code}</Code>\n</Area>\n</Item>\n"
    return out + "</Warning>\n"


def strongest(states):
    live = [s for s in states if s[0] is not None and s[1] != "解除"]
    if live:
        return max(live, key=lambda s: RANK[s[0]])
    lifted = [s for s in states if s[1] == "解除"]
    return lifted[0] if lifted else (None, "発表警報・注意報はなし", None)


def telegram(i, hhmm, dtype, changes, headline):
    h, m = map(int, hhmm.split(":"))
    jst = f"{DAY}T{h:02d}:{m:02d}:00+09:00"
    utc_h = (h - 9) % 24
    utc_day = DAY if h >= 9 else "2026-09-11"
    utc = f"{utc_day}T{utc_h:02d}:{m:02d}:{i:02d}Z"
    ctitle, htitle = TITLE[dtype]
    state = {code: changes.get(code, (None, "発表警報・注意報はなし", None)) for code, _, _ in MUNIS}
    muni_areas = [(c, n, state[c]) for c, n, _ in MUNIS]
    matome = [(mc, mn, strongest([state[c] for c, _, m in MUNIS if m == mc])) for mc, mn in MATOME.items()]
    top = strongest(list(state.values()))
    body = (block("気象警報・注意報（府県予報区等）", [("016000", "石狩・空知・後志地方", top)])
            + block("気象警報・注意報（一次細分区域等）", [("016010", "石狩地方", top)])
            + block("気象警報・注意報（市町村等をまとめた地域等）", matome)
            + block("気象警報・注意報（市町村等）", muni_areas))
    return f"""<?xml version="1.0" encoding="utf-8"?>
<!-- CONSTRUCTED DEMO SCENARIO (構成シナリオ): not an actual JMA telegram. -->
<Report xmlns="http://xml.kishou.go.jp/jmaxml1/" xmlns:jmx="http://xml.kishou.go.jp/jmaxml1/" xmlns:jmx_add="http://xml.kishou.go.jp/jmaxml1/addition1/">
<Control>
<Title>{ctitle}</Title>
<DateTime>{utc}</DateTime>
<Status>通常</Status>
<EditorialOffice>札幌管区気象台</EditorialOffice>
<PublishingOffice>札幌管区気象台</PublishingOffice>
</Control>
<Head xmlns="http://xml.kishou.go.jp/jmaxml1/informationBasis1/">
<Title>石狩・空知・後志地方{htitle}</Title>
<ReportDateTime>{jst}</ReportDateTime>
<TargetDateTime>{jst}</TargetDateTime>
<EventID/>
<InfoType>発表</InfoType>
<Serial/>
<InfoKind>気象警報・注意報</InfoKind>
<InfoKindVersion>1.5_0</InfoKindVersion>
<Headline>
<Text>{headline}</Text>
</Headline>
</Head>
<Body xmlns="http://xml.kishou.go.jp/jmaxml1/body/meteorology1/" xmlns:jmx_eb="http://xml.kishou.go.jp/jmaxml1/elementBasis1/">
{body}</Body>
</Report>
"""


def main():
    tdir = os.path.join(HERE, "telegrams")
    os.makedirs(tdir, exist_ok=True)
    toml = ['# Timeline of the constructed demo scenario. Generated by make_scenario.py; do not edit by hand.',
            'name = "demo-heavy-rain"',
            'description = "構成シナリオ: 札幌市の大雨（注意報→警報→土砂災害危険警報→大雨特別警報→解除）。実際に発表された情報ではありません。"',
            f'base_time = "{DAY}T06:00:00+09:00"', '']
    for i, (hhmm, dtype, changes, headline) in enumerate(STEPS, 1):
        name = f"{i:02d}_{dtype}.xml"
        with open(os.path.join(tdir, name), "w", encoding="utf-8") as f:
            f.write(telegram(i, hhmm, dtype, changes, headline))
        h, m = map(int, hhmm.split(":"))
        toml += ["[[step]]", f'at = "{DAY}T{h:02d}:{m:02d}:00+09:00"', 'feed = "extra"', f'file = "telegrams/{name}"',
                 f'title = "{TITLE[dtype][0]}"', ""]
    with open(os.path.join(HERE, "scenario.toml"), "w", encoding="utf-8") as f:
        f.write("\n".join(toml))


if __name__ == "__main__":
    main()
