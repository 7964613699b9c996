//! Unit tests of the pure engine: one test per rule of issue 5 item 4.

use chrono::{DateTime, TimeZone, Utc};

use super::engine::*;
use super::policy::{DisasterConfig, PolicyOverride, Selector};

const YAMAGATA: &str = "0620100";
const TENDO: &str = "0621000";
const SENDAI: &str = "0410100";

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, h, m, 0).unwrap()
}

fn districts() -> Vec<DistrictRef> {
    vec![
        DistrictRef {
            id: "yamagata-chuo".into(),
            name: "中央地区".into(),
            municipality: YAMAGATA.into(),
        },
        DistrictRef {
            id: "yamagata-minami".into(),
            name: "南部地区".into(),
            municipality: YAMAGATA.into(),
        },
        DistrictRef {
            id: "tendo-kita".into(),
            name: "北部地区".into(),
            municipality: TENDO.into(),
        },
    ]
}

#[allow(clippy::too_many_arguments)]
fn warning(
    muni: &str,
    phenomenon: Phenomenon,
    family: Family,
    code: &str,
    name: &str,
    severity: Severity,
    level: Option<u8>,
    issued: DateTime<Utc>,
    reported: DateTime<Utc>,
) -> ActiveWarning {
    ActiveWarning {
        status: ReportStatus::Actual,
        municipality: muni.into(),
        municipality_name: if muni == YAMAGATA {
            "山形市"
        } else {
            "天童市"
        }
        .into(),
        phenomenon,
        family,
        code: code.into(),
        name: name.into(),
        severity,
        level,
        issued_at: issued,
        report_datetime: reported,
        report_key: format!("report-{code}-{}", reported.timestamp()),
    }
}

fn rain_special(issued: DateTime<Utc>, reported: DateTime<Utc>) -> ActiveWarning {
    warning(
        YAMAGATA,
        Phenomenon::HeavyRain,
        Family::Weather,
        "33",
        "大雨特別警報",
        Severity::Emergency,
        Some(5),
        issued,
        reported,
    )
}

fn rain_warning(issued: DateTime<Utc>, reported: DateTime<Utc>) -> ActiveWarning {
    warning(
        YAMAGATA,
        Phenomenon::HeavyRain,
        Family::Weather,
        "03",
        "大雨警報",
        Severity::Warning,
        Some(3),
        issued,
        reported,
    )
}

fn rain_advisory(issued: DateTime<Utc>, reported: DateTime<Utc>) -> ActiveWarning {
    warning(
        YAMAGATA,
        Phenomenon::HeavyRain,
        Family::Weather,
        "10",
        "大雨注意報",
        Severity::Advisory,
        Some(2),
        issued,
        reported,
    )
}

struct Run {
    config: DisasterConfig,
    state: EngineState,
    districts: Vec<DistrictRef>,
}

impl Run {
    fn new() -> Self {
        Run {
            config: DisasterConfig::default(),
            state: EngineState::default(),
            districts: districts(),
        }
    }
    fn step(
        &mut self,
        now: DateTime<Utc>,
        warnings: &[ActiveWarning],
        changes: &[WarningChange],
        holds: &[ManualHold],
    ) -> Decision {
        let d = decide(
            &self.config,
            &self.state,
            EngineInput {
                now,
                warnings,
                changes,
                holds,
                districts: &self.districts,
            },
        );
        self.state = d.state.clone();
        d
    }
}

fn kinds(d: &Decision) -> Vec<StepKind> {
    d.steps.iter().map(|s| s.kind).collect()
}

#[test]
fn a_special_warning_switches_the_mode_and_alerts_everyone_in_the_municipalitys_districts() {
    let mut r = Run::new();
    let d = r.step(t(5, 5), &[rain_special(t(5, 5), t(5, 5))], &[], &[]);
    assert_eq!(d.mode, Mode::Disaster);
    assert!(d.mode_changed());
    assert!(
        matches!(d.reason, ModeReason::Warnings { ref triggers } if triggers == &vec!["actual/0620100/heavy_rain".to_string()])
    );
    assert_eq!(kinds(&d), vec![StepKind::Issue]);
    let s = &d.steps[0];
    assert_eq!(s.audience, Audience::Everyone);
    assert_eq!(s.priority, Priority::Disaster);
    assert!(!s.drill);
    let ids: Vec<&str> = s.districts.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["yamagata-chuo", "yamagata-minami"],
        "only 山形市's districts"
    );
    assert_eq!(s.current.as_ref().unwrap().issued_at, t(5, 5));
}

#[test]
fn a_level_3_warning_alerts_only_opted_in_residents_without_switching() {
    let mut r = Run::new();
    let d = r.step(t(5, 0), &[rain_warning(t(5, 0), t(5, 0))], &[], &[]);
    assert_eq!(d.mode, Mode::Normal);
    assert_eq!(kinds(&d), vec![StepKind::Issue]);
    assert_eq!(d.steps[0].audience, Audience::OptedIn);
    assert_eq!(d.steps[0].priority, Priority::Alert);
}

#[test]
fn an_advisory_does_nothing() {
    let mut r = Run::new();
    let d = r.step(t(5, 0), &[rain_advisory(t(5, 0), t(5, 0))], &[], &[]);
    assert!(d.steps.is_empty());
    assert_eq!(d.mode, Mode::Normal);
    assert!(r.state.announced.is_empty());
}

#[test]
fn warnings_for_a_municipality_without_districts_are_not_the_citys() {
    let mut r = Run::new();
    let mut w = rain_special(t(5, 0), t(5, 0));
    w.municipality = SENDAI.into();
    let d = r.step(t(5, 0), &[w], &[], &[]);
    assert!(d.steps.is_empty());
    assert_eq!(d.mode, Mode::Normal);
}

#[test]
fn the_same_state_twice_produces_no_second_step() {
    let mut r = Run::new();
    let ws = [rain_special(t(5, 0), t(5, 0))];
    let first = r.step(t(5, 0), &ws, &[], &[]);
    assert_eq!(first.steps.len(), 1);
    let again = r.step(t(5, 1), &ws, &[], &[]);
    assert!(again.steps.is_empty());
    assert!(!again.mode_changed());
}

#[test]
fn the_same_decision_from_the_same_memory_gives_the_same_step_keys() {
    let r = Run::new();
    let ws = [rain_special(t(5, 0), t(5, 0))];
    let input = EngineInput {
        now: t(5, 0),
        warnings: &ws,
        changes: &[],
        holds: &[],
        districts: &r.districts,
    };
    let a = decide(&r.config, &r.state, input);
    let b = decide(&r.config, &r.state, input);
    assert_eq!(a.steps[0].key, b.steps[0].key);
    assert_eq!(a.steps[0].key.len(), 32);
}

#[test]
fn a_continuation_telegram_with_a_new_report_key_sends_nothing() {
    let mut r = Run::new();
    r.step(t(5, 0), &[rain_special(t(5, 0), t(5, 0))], &[], &[]);
    let d = r.step(t(6, 0), &[rain_special(t(5, 0), t(6, 0))], &[], &[]);
    assert!(d.steps.is_empty());
}

#[test]
fn an_escalation_from_warning_to_special_warning_widens_the_audience() {
    let mut r = Run::new();
    r.step(t(5, 0), &[rain_warning(t(5, 0), t(5, 0))], &[], &[]);
    let d = r.step(t(6, 0), &[rain_special(t(6, 0), t(6, 0))], &[], &[]);
    assert_eq!(kinds(&d), vec![StepKind::Escalation]);
    let s = &d.steps[0];
    assert_eq!(s.audience, Audience::Everyone);
    assert_eq!(s.previous.as_ref().unwrap().code, "03");
    assert_eq!(s.current.as_ref().unwrap().code, "33");
    assert_eq!(d.mode, Mode::Disaster);
}

#[test]
fn a_downgrade_from_special_warning_to_warning_is_told_to_everyone_alerted() {
    let mut r = Run::new();
    r.step(t(5, 0), &[rain_special(t(5, 0), t(5, 0))], &[], &[]);
    let d = r.step(t(7, 0), &[rain_warning(t(7, 0), t(7, 0))], &[], &[]);
    assert_eq!(kinds(&d), vec![StepKind::Downgrade]);
    assert_eq!(
        d.steps[0].audience,
        Audience::Everyone,
        "not narrowed to opted-in"
    );
}

#[test]
fn a_downgrade_below_the_policy_is_told_once_and_a_later_rise_is_a_new_issue() {
    let mut r = Run::new();
    r.step(t(5, 0), &[rain_warning(t(5, 0), t(5, 0))], &[], &[]);
    let d = r.step(t(7, 0), &[rain_advisory(t(7, 0), t(7, 0))], &[], &[]);
    assert_eq!(kinds(&d), vec![StepKind::Downgrade]);
    assert!(r.state.announced.is_empty());
    let again = r.step(t(7, 10), &[rain_advisory(t(7, 0), t(7, 10))], &[], &[]);
    assert!(again.steps.is_empty());
    let rise = r.step(t(8, 0), &[rain_warning(t(8, 0), t(8, 0))], &[], &[]);
    assert_eq!(kinds(&rise), vec![StepKind::Issue]);
}

#[test]
fn a_lift_tells_those_alerted_and_the_mode_waits_out_the_quiet_period() {
    let mut r = Run::new();
    r.step(t(5, 0), &[rain_special(t(5, 0), t(5, 0))], &[], &[]);
    let lifted = WarningChange {
        status: ReportStatus::Actual,
        municipality: YAMAGATA.into(),
        phenomenon: Phenomenon::HeavyRain,
        kind: ChangeKind::Lifted,
        report_key: "lift".into(),
        report_datetime: t(9, 0),
    };
    let d = r.step(t(9, 1), &[], &[lifted], &[]);
    assert_eq!(kinds(&d), vec![StepKind::Lift]);
    assert_eq!(d.steps[0].audience, Audience::Everyone);
    assert_eq!(d.steps[0].reported_at, t(9, 0));
    // The last decision that saw the trigger ran at 05:00; the quiet hour ended at 06:00.
    assert_eq!(d.mode, Mode::Normal);
}

#[test]
fn the_mode_leaves_disaster_only_after_the_quiet_period_without_triggers() {
    let mut r = Run::new();
    let ws = [rain_special(t(5, 0), t(5, 0))];
    r.step(t(5, 0), &ws, &[], &[]);
    r.step(t(8, 0), &ws, &[], &[]); // still in force at 08:00: last trigger 08:00
    let d = r.step(t(8, 30), &[], &[], &[]);
    assert_eq!(d.mode, Mode::Disaster);
    assert_eq!(d.reason, ModeReason::QuietPeriod { until: t(9, 0) });
    let d = r.step(t(8, 59), &[], &[], &[]);
    assert_eq!(d.mode, Mode::Disaster);
    let d = r.step(t(9, 0), &[], &[], &[]);
    assert_eq!(d.mode, Mode::Normal);
    assert!(d.mode_changed());
}

#[test]
fn a_manual_hold_keeps_disaster_mode_and_its_release_returns_to_normal_once_quiet() {
    let mut r = Run::new();
    let hold = ManualHold {
        id: "h1".into(),
        by: "kikikanri".into(),
        since: t(4, 0),
        note: "台風接近".into(),
    };
    let d = r.step(t(4, 0), &[], &[], std::slice::from_ref(&hold));
    assert_eq!(d.mode, Mode::Disaster);
    assert!(matches!(d.reason, ModeReason::ManualHold { .. }));
    assert!(
        d.steps.is_empty(),
        "a hold switches the mode but sends nothing"
    );
    r.step(
        t(5, 0),
        &[rain_special(t(5, 0), t(5, 0))],
        &[],
        std::slice::from_ref(&hold),
    );
    // Warning lifted at 06:00; the hold keeps the mode past the quiet period.
    r.step(t(6, 0), &[], &[], std::slice::from_ref(&hold));
    let d = r.step(t(8, 0), &[], &[], std::slice::from_ref(&hold));
    assert_eq!(d.mode, Mode::Disaster);
    let d = r.step(t(8, 1), &[], &[], &[]);
    assert_eq!(
        d.mode,
        Mode::Normal,
        "released after the quiet period ended"
    );
}

#[test]
fn releasing_a_hold_within_the_quiet_period_of_a_warning_keeps_disaster_mode() {
    let mut r = Run::new();
    let hold = ManualHold {
        id: "h1".into(),
        by: "kikikanri".into(),
        since: t(4, 0),
        note: String::new(),
    };
    r.step(
        t(5, 0),
        &[rain_special(t(5, 0), t(5, 0))],
        &[],
        std::slice::from_ref(&hold),
    );
    let d = r.step(t(5, 30), &[], &[], &[]);
    assert_eq!(d.mode, Mode::Disaster);
    assert!(matches!(d.reason, ModeReason::QuietPeriod { .. }));
}

#[test]
fn a_correction_that_removes_the_warning_withdraws_it_from_those_alerted_instead_of_lifting_it() {
    let mut r = Run::new();
    r.step(t(5, 0), &[rain_warning(t(5, 0), t(5, 0))], &[], &[]);
    let change = WarningChange {
        status: ReportStatus::Actual,
        municipality: YAMAGATA.into(),
        phenomenon: Phenomenon::HeavyRain,
        kind: ChangeKind::Corrected,
        report_key: "teisei-none".into(),
        report_datetime: t(5, 0),
    };
    let d = r.step(t(5, 11), &[], std::slice::from_ref(&change), &[]);
    assert_eq!(kinds(&d), vec![StepKind::Cancellation]);
    assert_eq!(d.steps[0].audience, Audience::OptedIn);
    assert!(d.steps[0].current.is_none());
    // Nothing more next cycle, and nothing left to lift later.
    let d = r.step(t(5, 12), &[], std::slice::from_ref(&change), &[]);
    assert!(d.steps.is_empty());
    let d = r.step(t(6, 0), &[], &[], &[]);
    assert!(d.steps.is_empty());
}

#[test]
fn a_correction_below_the_policy_threshold_is_a_correction_to_those_alerted_not_a_downgrade() {
    let mut r = Run::new();
    r.step(t(5, 0), &[rain_warning(t(5, 0), t(5, 0))], &[], &[]);
    let change = WarningChange {
        status: ReportStatus::Actual,
        municipality: YAMAGATA.into(),
        phenomenon: Phenomenon::HeavyRain,
        kind: ChangeKind::Corrected,
        report_key: "teisei-advisory".into(),
        report_datetime: t(5, 0),
    };
    let advisory = rain_advisory(t(5, 0), t(5, 0));
    let d = r.step(
        t(5, 11),
        std::slice::from_ref(&advisory),
        std::slice::from_ref(&change),
        &[],
    );
    assert_eq!(kinds(&d), vec![StepKind::Correction]);
    assert_eq!(d.steps[0].audience, Audience::OptedIn);
    // Below the threshold the thread is forgotten: a later 警報 is a new issue.
    let d = r.step(
        t(5, 12),
        std::slice::from_ref(&advisory),
        std::slice::from_ref(&change),
        &[],
    );
    assert!(d.steps.is_empty());
    let d = r.step(t(6, 0), &[rain_warning(t(6, 0), t(6, 0))], &[], &[]);
    assert_eq!(kinds(&d), vec![StepKind::Issue]);
}

#[test]
fn a_correction_is_sent_once_to_those_alerted() {
    let mut r = Run::new();
    r.step(t(5, 0), &[rain_warning(t(5, 0), t(5, 0))], &[], &[]);
    let mut corrected = rain_warning(t(5, 0), t(5, 10));
    corrected.name = "大雨警報（土砂災害）".into();
    let change = WarningChange {
        status: ReportStatus::Actual,
        municipality: YAMAGATA.into(),
        phenomenon: Phenomenon::HeavyRain,
        kind: ChangeKind::Corrected,
        report_key: "teisei-1".into(),
        report_datetime: t(5, 10),
    };
    let d = r.step(
        t(5, 11),
        std::slice::from_ref(&corrected),
        std::slice::from_ref(&change),
        &[],
    );
    assert_eq!(kinds(&d), vec![StepKind::Correction]);
    assert_eq!(d.steps[0].audience, Audience::OptedIn);
    // The same change seen again (next cycle, or after a restart) sends nothing.
    let d = r.step(
        t(5, 12),
        std::slice::from_ref(&corrected),
        std::slice::from_ref(&change),
        &[],
    );
    assert!(d.steps.is_empty());
}

#[test]
fn a_cancellation_tells_those_alerted_that_the_alert_was_withdrawn_not_lifted() {
    let mut r = Run::new();
    r.step(t(5, 0), &[rain_special(t(5, 0), t(5, 0))], &[], &[]);
    let change = WarningChange {
        status: ReportStatus::Actual,
        municipality: YAMAGATA.into(),
        phenomenon: Phenomenon::HeavyRain,
        kind: ChangeKind::Cancelled,
        report_key: "torikeshi-1".into(),
        report_datetime: t(5, 3),
    };
    let d = r.step(t(5, 4), &[], std::slice::from_ref(&change), &[]);
    assert_eq!(kinds(&d), vec![StepKind::Cancellation]);
    let s = &d.steps[0];
    assert!(s.current.is_none());
    assert_eq!(s.previous.as_ref().unwrap().code, "33");
    assert_eq!(s.audience, Audience::Everyone);
    assert!(r.state.announced.is_empty());
}

#[test]
fn a_cancelled_escalation_that_leaves_a_warning_is_a_cancellation_with_the_remaining_warning() {
    let mut r = Run::new();
    r.step(t(5, 0), &[rain_warning(t(5, 0), t(5, 0))], &[], &[]);
    r.step(t(6, 0), &[rain_special(t(6, 0), t(6, 0))], &[], &[]);
    let change = WarningChange {
        status: ReportStatus::Actual,
        municipality: YAMAGATA.into(),
        phenomenon: Phenomenon::HeavyRain,
        kind: ChangeKind::Cancelled,
        report_key: "torikeshi-2".into(),
        report_datetime: t(6, 5),
    };
    let d = r.step(
        t(6, 6),
        &[rain_warning(t(5, 0), t(6, 5))],
        std::slice::from_ref(&change),
        &[],
    );
    assert_eq!(kinds(&d), vec![StepKind::Cancellation]);
    assert_eq!(d.steps[0].current.as_ref().unwrap().code, "03");
    assert_eq!(d.steps[0].previous.as_ref().unwrap().code, "33");
}

#[test]
fn drill_telegrams_go_to_the_drill_audience_only_and_never_move_the_mode() {
    let mut r = Run::new();
    let mut w = rain_special(t(5, 0), t(5, 0));
    w.status = ReportStatus::Exercise;
    let d = r.step(t(5, 0), std::slice::from_ref(&w), &[], &[]);
    assert_eq!(d.mode, Mode::Normal);
    assert_eq!(kinds(&d), vec![StepKind::Issue]);
    assert!(d.steps[0].drill);
    assert_eq!(d.steps[0].audience, Audience::Drill);
    assert_eq!(d.steps[0].priority, Priority::Normal);
    assert!(d.steps[0].thread.starts_with("exercise/"));
    // The drill lift also goes to the drill audience.
    let d = r.step(t(6, 0), &[], &[], &[]);
    assert_eq!(kinds(&d), vec![StepKind::Lift]);
    assert_eq!(d.steps[0].audience, Audience::Drill);
}

#[test]
fn a_drill_and_a_real_warning_of_the_same_phenomenon_are_separate_threads() {
    let mut r = Run::new();
    let mut drill = rain_special(t(5, 0), t(5, 0));
    drill.status = ReportStatus::Exercise;
    let real = rain_special(t(5, 0), t(5, 0));
    let d = r.step(t(5, 0), &[drill, real], &[], &[]);
    assert_eq!(d.steps.len(), 2);
    assert_eq!(d.steps.iter().filter(|s| s.drill).count(), 1);
    assert_ne!(d.steps[0].key, d.steps[1].key);
}

#[test]
fn test_telegrams_reach_nobody() {
    let mut r = Run::new();
    let mut w = rain_special(t(5, 0), t(5, 0));
    w.status = ReportStatus::Test;
    let d = r.step(t(5, 0), &[w], &[], &[]);
    assert!(d.steps.is_empty());
    assert_eq!(d.mode, Mode::Normal);
}

#[test]
fn a_warning_issued_and_lifted_while_down_sends_nothing() {
    // Sonae was down 05:00–09:00; the warning came and went. The state at 09:00 has nothing.
    let mut r = Run::new();
    let d = r.step(t(9, 0), &[], &[], &[]);
    assert!(d.steps.is_empty());
    assert_eq!(d.mode, Mode::Normal);
}

#[test]
fn a_warning_still_in_force_after_downtime_is_announced_once_with_its_original_issue_time() {
    let mut r = Run::new();
    // Issued at 02:00, confirmed by a telegram at 08:50; Sonae comes back at 09:00.
    let w = rain_special(t(2, 0), t(8, 50));
    let d = r.step(t(9, 0), std::slice::from_ref(&w), &[], &[]);
    assert_eq!(kinds(&d), vec![StepKind::Issue]);
    assert_eq!(d.steps[0].current.as_ref().unwrap().issued_at, t(2, 0));
    let d = r.step(t(9, 1), std::slice::from_ref(&w), &[], &[]);
    assert!(d.steps.is_empty());
}

#[test]
fn a_telegram_older_than_the_max_report_age_never_triggers_a_send_by_itself() {
    let mut r = Run::new();
    // Latest telegram at 02:00, now 08:01: older than 6 h.
    let w = rain_special(t(2, 0), t(2, 0));
    let d = r.step(t(8, 1), std::slice::from_ref(&w), &[], &[]);
    assert!(d.steps.is_empty());
    assert_eq!(d.stale, vec!["actual/0620100/heavy_rain".to_string()]);
    assert_eq!(
        d.mode,
        Mode::Normal,
        "a stale warning is not a trigger either"
    );
    // A fresh telegram confirming it is announced.
    let d = r.step(t(8, 2), &[rain_special(t(2, 0), t(8, 2))], &[], &[]);
    assert_eq!(kinds(&d), vec![StepKind::Issue]);
}

#[test]
fn a_stale_escalation_is_not_sent_but_a_fresh_one_is() {
    let mut r = Run::new();
    r.step(t(1, 0), &[rain_warning(t(1, 0), t(1, 0))], &[], &[]);
    let d = r.step(t(8, 0), &[rain_special(t(1, 30), t(1, 30))], &[], &[]);
    assert!(d.steps.is_empty());
    let d = r.step(t(8, 5), &[rain_special(t(1, 30), t(8, 5))], &[], &[]);
    assert_eq!(kinds(&d), vec![StepKind::Escalation]);
}

#[test]
fn two_rivers_in_one_town_collapse_to_the_highest_flood_level() {
    let mut r = Run::new();
    let a = warning(
        YAMAGATA,
        Phenomenon::Flood,
        Family::Flood,
        "30",
        "レベル３氾濫警報",
        Severity::Warning,
        Some(3),
        t(5, 0),
        t(5, 0),
    );
    let b = warning(
        YAMAGATA,
        Phenomenon::Flood,
        Family::Flood,
        "40",
        "レベル４氾濫危険警報",
        Severity::Danger,
        Some(4),
        t(5, 0),
        t(5, 0),
    );
    let d = r.step(t(5, 0), &[a, b], &[], &[]);
    assert_eq!(d.steps.len(), 1);
    assert_eq!(d.steps[0].current.as_ref().unwrap().code, "40");
    assert_eq!(d.mode, Mode::Disaster);
}

#[test]
fn each_default_trigger_switches_the_mode() {
    let cases = [
        (
            Phenomenon::Landslide,
            Family::Landslide,
            "3",
            "土砂災害警戒情報",
            Severity::Danger,
            Some(4),
        ),
        (
            Phenomenon::Landslide,
            Family::Weather,
            "49",
            "レベル４土砂災害危険警報",
            Severity::Danger,
            Some(4),
        ),
        (
            Phenomenon::HeavyRain,
            Family::Weather,
            "43",
            "レベル４大雨危険警報",
            Severity::Danger,
            Some(4),
        ),
        (
            Phenomenon::Flood,
            Family::Flood,
            "51",
            "レベル５氾濫特別警報",
            Severity::Emergency,
            Some(5),
        ),
        (
            Phenomenon::Tsunami,
            Family::Tsunami,
            "51",
            "津波警報",
            Severity::Warning,
            None,
        ),
        (
            Phenomenon::Tsunami,
            Family::Tsunami,
            "52",
            "大津波警報",
            Severity::Emergency,
            None,
        ),
        (
            Phenomenon::Earthquake,
            Family::Intensity,
            "5+",
            "震度５強",
            Severity::Warning,
            None,
        ),
        (
            Phenomenon::Earthquake,
            Family::Intensity,
            "7",
            "震度７",
            Severity::Warning,
            None,
        ),
        (
            Phenomenon::Storm,
            Family::Weather,
            "35",
            "暴風特別警報",
            Severity::Emergency,
            None,
        ),
    ];
    for (ph, fam, code, name, sev, level) in cases {
        let mut r = Run::new();
        let w = warning(YAMAGATA, ph, fam, code, name, sev, level, t(5, 0), t(5, 0));
        let d = r.step(t(5, 0), &[w], &[], &[]);
        assert_eq!(d.mode, Mode::Disaster, "{name} should switch the mode");
        assert_eq!(d.steps[0].audience, Audience::Everyone, "{name}");
    }
}

#[test]
fn intensity_5_lower_and_a_tsunami_advisory_do_not_switch_the_mode() {
    for (ph, fam, code, name, sev) in [
        (
            Phenomenon::Earthquake,
            Family::Intensity,
            "5-",
            "震度５弱",
            Severity::Warning,
        ),
        (
            Phenomenon::Tsunami,
            Family::Tsunami,
            "62",
            "津波注意報",
            Severity::Advisory,
        ),
        (
            Phenomenon::Flood,
            Family::Flood,
            "20",
            "レベル２氾濫注意報",
            Severity::Advisory,
        ),
    ] {
        let mut r = Run::new();
        let w = warning(YAMAGATA, ph, fam, code, name, sev, None, t(5, 0), t(5, 0));
        let d = r.step(t(5, 0), &[w], &[], &[]);
        assert_eq!(d.mode, Mode::Normal, "{name}");
        assert!(d.steps.is_empty(), "{name}");
    }
}

#[test]
fn a_municipality_override_replaces_only_the_lists_it_names() {
    let mut r = Run::new();
    r.config.municipalities.insert(
        TENDO.into(),
        PolicyOverride {
            alert_all: Some(vec![Selector::try_from("weather:05".to_string()).unwrap()]),
            ..PolicyOverride::default()
        },
    );
    let storm = |muni: &str| {
        warning(
            muni,
            Phenomenon::Storm,
            Family::Weather,
            "05",
            "暴風警報",
            Severity::Warning,
            None,
            t(5, 0),
            t(5, 0),
        )
    };
    let d = r.step(t(5, 0), &[storm(TENDO), storm(YAMAGATA)], &[], &[]);
    assert_eq!(
        d.steps.len(),
        1,
        "山形市 keeps the default (暴風警報 does nothing)"
    );
    assert_eq!(d.steps[0].municipality, TENDO);
    assert_eq!(d.steps[0].audience, Audience::Everyone);
    assert_eq!(d.mode, Mode::Normal);
}

#[test]
fn the_ignore_list_wins_over_every_other_list() {
    let mut r = Run::new();
    r.config.policy.ignore = vec![Selector::try_from("weather:33".to_string()).unwrap()];
    let d = r.step(t(5, 0), &[rain_special(t(5, 0), t(5, 0))], &[], &[]);
    assert!(d.steps.is_empty());
    assert_eq!(d.mode, Mode::Normal);
}

#[test]
fn step_keys_differ_by_kind_municipality_and_source() {
    let a = step_key("actual/0620100/heavy_rain", StepKind::Issue, "x");
    assert_ne!(
        a,
        step_key("actual/0620100/heavy_rain", StepKind::Lift, "x")
    );
    assert_ne!(
        a,
        step_key("actual/0621000/heavy_rain", StepKind::Issue, "x")
    );
    assert_ne!(
        a,
        step_key("actual/0620100/heavy_rain", StepKind::Issue, "y")
    );
    assert_eq!(
        a,
        step_key("actual/0620100/heavy_rain", StepKind::Issue, "x")
    );
}

#[test]
fn the_engine_memory_survives_a_json_round_trip() {
    let mut r = Run::new();
    r.step(t(5, 0), &[rain_special(t(5, 0), t(5, 0))], &[], &[]);
    let text = serde_json::to_string(&r.state).unwrap();
    let back: EngineState = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r.state);
    // A restart with the stored memory sends nothing new for the same state.
    r.state = back;
    let d = r.step(t(5, 2), &[rain_special(t(5, 0), t(5, 1))], &[], &[]);
    assert!(d.steps.is_empty());
}

#[test]
fn selectors_parse_and_reject_with_the_fix_in_the_message() {
    for ok in [
        "weather:33",
        "flood:*",
        "severity:特別警報",
        "level:3",
        "level:4+",
        "intensity:5+",
    ] {
        let s = Selector::try_from(ok.to_string()).unwrap();
        assert_eq!(s.to_string(), ok);
    }
    for bad in ["rain:33", "level:9", "severity:大変", "weather:", "33"] {
        let e = Selector::try_from(bad.to_string()).unwrap_err();
        assert!(e.contains(bad) && e.contains("FAMILY:CODE"), "{e}");
    }
}

#[test]
fn codes_match_with_or_without_leading_zeros() {
    let sel = Selector::try_from("weather:3".to_string()).unwrap();
    let w = rain_warning(t(5, 0), t(5, 0));
    assert!(sel.matches(&w));
    let sel = Selector::try_from("weather:003".to_string()).unwrap();
    assert!(sel.matches(&w));
    let sel = Selector::try_from("weather:30".to_string()).unwrap();
    assert!(!sel.matches(&w));
}

#[test]
fn an_observed_intensity_leaving_the_state_sends_no_lift() {
    let mut r = Run::new();
    let quake = warning(
        YAMAGATA,
        Phenomenon::Earthquake,
        Family::Intensity,
        "6-",
        "震度６弱",
        Severity::Warning,
        None,
        t(5, 0),
        t(5, 0),
    );
    let d = r.step(t(5, 0), &[quake], &[], &[]);
    assert_eq!(kinds(&d), vec![StepKind::Issue]);
    assert_eq!(d.mode, Mode::Disaster);
    let d = r.step(t(8, 0), &[], &[], &[]);
    assert!(d.steps.is_empty(), "no 解除 for an earthquake");
    assert!(r.state.announced.is_empty());
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashSet};

    /// Candidate warnings: (status, phenomenon, family, code, name, severity, level).
    type Candidate = (
        ReportStatus,
        Phenomenon,
        Family,
        &'static str,
        &'static str,
        Severity,
        Option<u8>,
    );

    fn candidates() -> Vec<Candidate> {
        let mut v = Vec::new();
        for status in [
            ReportStatus::Actual,
            ReportStatus::Exercise,
            ReportStatus::Test,
        ] {
            v.push((
                status,
                Phenomenon::HeavyRain,
                Family::Weather,
                "10",
                "大雨注意報",
                Severity::Advisory,
                Some(2),
            ));
            v.push((
                status,
                Phenomenon::HeavyRain,
                Family::Weather,
                "03",
                "大雨警報",
                Severity::Warning,
                Some(3),
            ));
            v.push((
                status,
                Phenomenon::HeavyRain,
                Family::Weather,
                "43",
                "レベル４大雨危険警報",
                Severity::Danger,
                Some(4),
            ));
            v.push((
                status,
                Phenomenon::HeavyRain,
                Family::Weather,
                "33",
                "大雨特別警報",
                Severity::Emergency,
                Some(5),
            ));
            v.push((
                status,
                Phenomenon::Landslide,
                Family::Landslide,
                "3",
                "土砂災害警戒情報",
                Severity::Danger,
                Some(4),
            ));
        }
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn any_sequence_of_states_gives_unique_keys_idempotent_decisions_and_a_clean_end(
            seq in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 15), 1..12)
        ) {
            let cands = candidates();
            let mut r = Run::new();
            let mut keys = HashSet::new();
            let mut since: BTreeMap<usize, DateTime<Utc>> = BTreeMap::new();
            let mut now = t(0, 0);
            for present in &seq {
                now += chrono::Duration::minutes(10);
                // One level per (status, phenomenon) at a time, as the active state holds it.
                let mut chosen: BTreeMap<(ReportStatus, Phenomenon), usize> = BTreeMap::new();
                for (i, on) in present.iter().enumerate() {
                    if *on {
                        chosen.insert((cands[i].0, cands[i].1), i);
                    }
                }
                let live: HashSet<usize> = chosen.values().copied().collect();
                since.retain(|i, _| live.contains(i));
                let ws: Vec<ActiveWarning> = live
                    .iter()
                    .map(|&i| {
                        let (status, ph, fam, code, name, sev, level) = cands[i];
                        let issued = *since.entry(i).or_insert(now);
                        let mut w = warning(YAMAGATA, ph, fam, code, name, sev, level, issued, now);
                        w.status = status;
                        w
                    })
                    .collect();
                let d = r.step(now, &ws, &[], &[]);
                for s in &d.steps {
                    prop_assert!(keys.insert(s.key.clone()), "step key reused: {:?}", s);
                    prop_assert!(!s.thread.starts_with("test/"));
                    prop_assert_eq!(s.drill, s.audience == Audience::Drill);
                }
                let again = r.step(now, &ws, &[], &[]);
                prop_assert!(again.steps.is_empty(), "repeat produced {:?}", again.steps);
            }
            // Everything ends: one final cycle lifts what is left; after the quiet period the mode is normal.
            now += chrono::Duration::minutes(10);
            let d = r.step(now, &[], &[], &[]);
            prop_assert!(d.steps.iter().all(|s| matches!(s.kind, StepKind::Lift)));
            prop_assert!(r.state.announced.is_empty());
            let d = r.step(now + chrono::Duration::hours(2), &[], &[], &[]);
            prop_assert_eq!(d.mode, Mode::Normal);
        }
    }
}

#[test]
fn a_second_downgrade_to_the_same_warning_has_its_own_key() {
    let mut r = Run::new();
    let w3 = rain_warning(t(5, 0), t(5, 0));
    r.step(t(5, 0), std::slice::from_ref(&w3), &[], &[]);
    r.step(t(6, 0), &[rain_special(t(6, 0), t(6, 0))], &[], &[]);
    let first = r.step(t(6, 10), &[rain_warning(t(5, 0), t(6, 10))], &[], &[]);
    r.step(t(6, 30), &[rain_special(t(6, 30), t(6, 30))], &[], &[]);
    let second = r.step(t(6, 40), &[rain_warning(t(5, 0), t(6, 40))], &[], &[]);
    assert_eq!(kinds(&first), vec![StepKind::Downgrade]);
    assert_eq!(kinds(&second), vec![StepKind::Downgrade]);
    assert_ne!(first.steps[0].key, second.steps[0].key);
}

#[test]
fn unregistered_friends_follow_the_policy_and_hear_every_follow_up_of_what_they_were_told() {
    use super::policy::Unregistered;
    // everyone (default): every step to all residents; never opted-in steps.
    let mut r = Run::new();
    let d = r.step(t(5, 0), &[rain_warning(t(5, 0), t(5, 0))], &[], &[]);
    assert_eq!(d.steps[0].audience, Audience::OptedIn);
    assert!(!d.steps[0].unregistered, "opted-in steps never");
    let d = r.step(t(6, 0), &[rain_special(t(6, 0), t(6, 0))], &[], &[]);
    assert!(d.steps[0].unregistered);
    let d = r.step(t(9, 0), &[], &[], &[]);
    assert_eq!(kinds(&d), vec![StepKind::Lift]);
    assert!(d.steps[0].unregistered, "the lift of what they were told");

    // special_only: a 危険警報 (everyone) is not for them, its escalation to 特別警報 is, and so is the
    // downgrade back to 警報 and the lift after it.
    let mut r = Run::new();
    r.config.unregistered = Unregistered::SpecialOnly;
    let danger = warning(
        YAMAGATA,
        Phenomenon::HeavyRain,
        Family::Weather,
        "43",
        "大雨危険警報",
        Severity::Danger,
        Some(4),
        t(5, 0),
        t(5, 0),
    );
    let d = r.step(t(5, 0), std::slice::from_ref(&danger), &[], &[]);
    assert_eq!(d.steps[0].audience, Audience::Everyone);
    assert!(!d.steps[0].unregistered);
    let d = r.step(t(6, 0), &[rain_special(t(6, 0), t(6, 0))], &[], &[]);
    assert_eq!(kinds(&d), vec![StepKind::Escalation]);
    assert!(d.steps[0].unregistered);
    let d = r.step(t(7, 0), std::slice::from_ref(&danger), &[], &[]);
    assert_eq!(kinds(&d), vec![StepKind::Downgrade]);
    assert!(
        d.steps[0].unregistered,
        "told of the 特別警報, told of its end"
    );
    let d = r.step(t(9, 0), &[], &[], &[]);
    assert!(d.steps[0].unregistered);

    // none: never; drills: never.
    let mut r = Run::new();
    r.config.unregistered = Unregistered::None;
    let d = r.step(t(6, 0), &[rain_special(t(6, 0), t(6, 0))], &[], &[]);
    assert!(!d.steps[0].unregistered);
    let mut r = Run::new();
    let mut drill = rain_special(t(6, 0), t(6, 0));
    drill.status = ReportStatus::Exercise;
    let d = r.step(t(6, 0), &[drill], &[], &[]);
    assert_eq!(d.steps[0].audience, Audience::Drill);
    assert!(!d.steps[0].unregistered);
}

#[test]
fn engine_memory_saved_before_unregistered_friends_existed_still_loads() {
    let mut r = Run::new();
    r.step(t(6, 0), &[rain_special(t(6, 0), t(6, 0))], &[], &[]);
    let mut v = serde_json::to_value(&r.state).unwrap();
    for a in v["announced"].as_object_mut().unwrap().values_mut() {
        a.as_object_mut().unwrap().remove("unregistered");
    }
    let old: EngineState = serde_json::from_value(v).unwrap();
    assert!(old.announced.values().all(|a| !a.unregistered));
}
