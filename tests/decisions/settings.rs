//! Decisions while a session's settings may have moved: which masked types each kind of move
//! reaches, and that a narrow move never hides a wider one set beside it.

use super::*;
use unscharf::policy::decide::{Moved, SettingsMove, LEVERS_ONLY};

const SCHEMA: &str = "CREATE SCHEMA s;
CREATE TABLE s.t (id integer PRIMARY KEY, born date, factor double precision, scan bytea, city text);";

const POLICY: &str = "campaign: s\ntables: [s.*]\npurposes:\n  p:\n    members: [a]\n    tables:\n      s.t:\n        columns:\n          id: allow\n          city: allow\n          born: { mask: \"first(4)\" }\n          factor: { mask: \"first(3)\" }\n          scan: { mask: \"first(12)\" }\n";

/// The moves a session may bring, by level (the session's clock decides the level; its unit tests
/// check which change gives which).
fn moves() -> [SettingsMove; 4] {
    [
        SettingsMove::new(Moved::NoPrint, format!("{LEVERS_ONLY}work_mem (SET)")),
        SettingsMove::new(
            Moved::FloatPrint,
            "this session changed settings (SET extra_float_digits)",
        ),
        SettingsMove::new(
            Moved::FloatPrint,
            "this session set settings when it connected (extra_float_digits)",
        ),
        SettingsMove::new(
            Moved::Anything,
            "this session changed settings whose values unscharf cannot see (SET bytea_output)",
        ),
    ]
}

#[test]
fn each_move_refuses_the_masks_it_reaches_and_no_narrow_move_hides_a_wide_one() {
    let cat = offline::from_schema_sql(SCHEMA, "s.sql").unwrap();
    let pol = load_texts(&[("s.yaml", POLICY)], None).unwrap();
    let path = [vec!["public".to_owned()]];
    let none = BTreeSet::new();
    let verdict_under = |moved: Option<&SettingsMove>, sql: &str| {
        let a = analyze(
            sql,
            AnalyzeCtx {
                catalog: &cat,
                search_paths: &path,
                user: "a",
                revert_paths: &[],
                abandoned: Default::default(),
            },
        )
        .map_err(|e| refusal_for(&e));
        let jcx = JudgeCtx {
            policy: &pol,
            purpose: &pol.purposes["p"],
            catalog: &cat,
            today: today(),
            read_campaigns: &none,
            dba_path: None,
            settings_moved: moved,
            path_moved: None,
        };
        summary(&a.and_then(|a| judge_all(&a, &jcx, &NoRegistry)))
    };
    let all = "SELECT born, factor, scan FROM s.t WHERE id = 1";
    let no_floats = "SELECT born, scan FROM s.t WHERE id = 1";
    let floats = "SELECT factor FROM s.t WHERE id = 1";
    let refused = "refused: forbidden_setting";
    let [levers, digits, digits_at_start, bytea] = moves();
    let (levers, digits, digits_at_start, bytea) = (&levers, &digits, &digits_at_start, &bytea);
    let cases: &[(Option<&SettingsMove>, &str, &str)] = &[
        (None, all, "masked: born, factor, scan"),
        // Round 228 BM2: a planner lever moves no printed value.
        (Some(levers), all, "masked: born, factor, scan"),
        // Round 234 BS1: pgjdbc's `SET extra_float_digits = 3` reaches floats only.
        (Some(digits), no_floats, "masked: born, scan"),
        (Some(digits_at_start), no_floats, "masked: born, scan"),
        (Some(digits), floats, refused),
        (Some(bytea), no_floats, refused),
        (None, &format!("SET extra_float_digits = 3; {no_floats}"), "masked: born, scan"),
        (None, &format!("SET extra_float_digits = 3; {floats}"), refused),
        // A wider move beside a narrow one, in whichever order.
        (Some(levers), &format!("SET bytea_output = escape; {no_floats}"), refused),
        (Some(digits), &format!("SET bytea_output = escape; {no_floats}"), refused),
        (None, &format!("SET bytea_output = escape; SET extra_float_digits = 3; {no_floats}"), refused),
        (None, &format!("SET extra_float_digits = 3; SET DateStyle = 'SQL, DMY'; {no_floats}"), refused),
        (
            None,
            "SELECT set_config('extra_float_digits', '3', false), set_config('bytea_output', 'escape', false), scan FROM s.t",
            refused,
        ),
        (
            Some(levers),
            "SELECT set_config('bytea_output', 'escape', false), scan FROM s.t",
            refused,
        ),
        // Text that prints the same under any setting is not refused.
        (Some(bytea), "SELECT city FROM s.t", "allowed"),
    ];
    let mut failures = Vec::new();
    for (moved, sql, want) in cases {
        let got = verdict_under(*moved, sql);
        if got != *want {
            failures.push(format!(
                "  [{moved:?}] {sql}\n      expected {want}\n      got      {got}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
