#!/usr/bin/env python3
"""Python ElementTree baseline for benches/jma_parse.rs: the same extraction as `jma::report::parse`
(Control, Head, every Body/Warning block with Items, Areas and coded Kinds), repeated on one file for a
fixed time. Prints one JSON line: {"docs": N, "seconds": S}. Usage: jma_parse_et.py FILE SECONDS"""
import json
import sys
import time
import xml.etree.ElementTree as ET

JMX = "{http://xml.kishou.go.jp/jmaxml1/}"
IB = "{http://xml.kishou.go.jp/jmaxml1/informationBasis1/}"


def text(el, path):
    e = el.find(path)
    return (e.text or "").strip() if e is not None else ""


def extract(data):
    root = ET.fromstring(data)
    if root.tag != JMX + "Report":
        raise ValueError("not a JMA report")
    control = root.find(JMX + "Control")
    head = root.find(IB + "Head")
    out = {
        "control": {k: text(control, JMX + k) for k in ("Title", "DateTime", "Status", "EditorialOffice", "PublishingOffice")},
        "head": {k: text(head, IB + k) for k in ("Title", "ReportDateTime", "TargetDateTime", "EventID", "InfoType", "Serial", "InfoKind", "InfoKindVersion")},
        "headline": text(head, IB + "Headline/" + IB + "Text"),
        "warnings": [],
    }
    infos = []
    for info in head.iterfind(IB + "Headline/" + IB + "Information"):
        items = []
        for item in info.iterfind(IB + "Item"):
            kinds = [(text(k, IB + "Name"), text(k, IB + "Code"), text(k, IB + "Condition")) for k in item.iterfind(IB + "Kind")]
            areas = [(text(a, IB + "Name"), text(a, IB + "Code")) for a in item.iterfind(IB + "Areas/" + IB + "Area")]
            items.append((kinds, areas))
        infos.append((info.get("type"), items))
    out["headline_information"] = infos
    body = next((c for c in root if c.tag.endswith("}Body")), None)
    if body is not None:
        ns = body.tag[: body.tag.index("}") + 1]
        for w in body.iterfind(ns + "Warning"):
            items = []
            for item in w.iterfind(ns + "Item"):
                kinds = []
                for k in item.iterfind(ns + "Kind"):
                    code = k.find(ns + "Code")
                    if code is not None:
                        kinds.append((text(k, ns + "Name"), (code.text or "").strip(), text(k, ns + "Status")))
                areas = [(text(a, ns + "Name"), text(a, ns + "Code")) for a in item.findall(ns + "Area") + item.findall(ns + "Areas/" + ns + "Area")]
                items.append((areas, kinds))
            out["warnings"].append((w.get("type"), items))
        notice = body.find(ns + "Notice")
        out["notice"] = (notice.text or "").strip() if notice is not None else None
    return out


def main():
    path, seconds = sys.argv[1], float(sys.argv[2])
    data = open(path, "rb").read()
    extract(data)  # warm up, and fail early on a bad file
    n = 0
    start = time.perf_counter()
    while True:
        extract(data)
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    print(json.dumps({"docs": n, "seconds": elapsed}))


if __name__ == "__main__":
    main()
