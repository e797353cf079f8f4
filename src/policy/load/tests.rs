//! Strict loading: every broken policy names its file, line and key, and nothing of it is loaded.

use super::load_texts;

const CAMPAIGN: &str = "campaign: water
tables: [water.*]
purposes:
  hotline:
    members: [agent]
    tables:
      water.customers:
        columns:
          name: allow
          phone: { mask: last(3) }
";

/// Loads `files`, which must fail, and returns the first error's text.
fn error(files: &[(&str, &str)], key: Option<&[u8]>) -> String {
    match load_texts(files, key) {
        Ok(_) => panic!("loaded although broken: {files:?}"),
        Err(e) => e.0[0].to_string(),
    }
}

#[test]
fn the_sample_shape_loads() {
    let set = load_texts(&[("water.yaml", CAMPAIGN)], None).unwrap();
    assert_eq!(set.campaigns.len(), 1);
}

#[test]
fn each_error_names_file_line_and_key() {
    let cases: &[(&str, &str, &str)] = &[
        // A misspelt key anywhere in the document.
        (
            "water.yaml",
            &CAMPAIGN.replace("members:", "membres:"),
            "water.yaml:5: purposes.hotline: unknown field `membres`",
        ),
        // A mask that does not exist, in flow style.
        ("water.yaml", &CAMPAIGN.replace("last(3)", "sparkle"), "water.yaml:10:"),
        // A date that is not one.
        (
            "water.yaml",
            &CAMPAIGN.replace("tables: [water.*]", "contract_ends: 2027-02-30\ntables: [water.*]"),
            "water.yaml:2:",
        ),
        // A pattern that is not schema.table or schema.*.
        (
            "water.yaml",
            &CAMPAIGN.replace("[water.*]", "[water]"),
            "water.yaml:2: tables → water:",
        ),
        // A purpose granting a table no campaign claims.
        (
            "water.yaml",
            &CAMPAIGN.replace("water.customers:", "gas.customers:"),
            "water.yaml:7: hotline → gas.customers: `gas.customers` belongs to no campaign",
        ),
        // The pseudonym mask without a secret, located at its use.
        (
            "water.yaml",
            &CAMPAIGN.replace("last(3)", "pseudonym"),
            "water.yaml:10: mask: the pseudonym mask needs a secret",
        ),
    ];
    for (file, text, want) in cases {
        let got = error(&[(file, text)], None);
        assert!(got.starts_with(want), "want {want}\n got {got}");
    }
}

/// Round 262 CU1: a key given twice (a merge's leftover) is an error, not the last one winning.
#[test]
fn a_key_given_twice_is_an_error() {
    let twice = format!("{CAMPAIGN}      water.customers: {{ columns: all }}\n");
    let got = error(&[("water.yaml", &twice)], None);
    assert!(
        got.starts_with("water.yaml:11: purposes.hotline.tables: duplicate entry with key \"water.customers\""),
        "{got}"
    );
    let purpose_twice = format!("{CAMPAIGN}  hotline:\n    members: [agent]\n    tables: {{}}\n");
    assert!(error(&[("water.yaml", &purpose_twice)], None).contains("duplicate entry with key \"hotline\""));
}

/// Round 262 CU2: a policy file that is a dangling symlink stops the load.
#[test]
fn an_unreadable_policy_file_stops_the_load() {
    let dir = std::env::temp_dir().join(format!("unscharf-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("water.yaml"), CAMPAIGN).unwrap();
    let link = dir.join("zeitung.yaml");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(dir.join("gone.yaml"), &link).unwrap();
    let got = super::load_dir(&dir, None).map(|_| ()).unwrap_err().0[0].to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(got.contains("zeitung.yaml") && got.contains("No such file"), "{got}");
}

#[test]
fn a_table_belongs_to_one_campaign() {
    let other = "campaign: audit\ntables: [water.customers]\npurposes: {}\n";
    let got = error(&[("water.yaml", CAMPAIGN), ("zz.yaml", other)], None);
    assert!(
        got.starts_with("zz.yaml:2: tables → water.customers: `water.customers` overlaps `water.*`"),
        "{got}"
    );
    let twice = CAMPAIGN.replace("purposes:", "purposes: {}\nx:");
    assert!(
        error(&[("water.yaml", &twice)], None).starts_with("water.yaml:"),
        "an unknown top-level key"
    );
    let again = error(
        &[("a.yaml", CAMPAIGN), ("b.yaml", "campaign: water\ntables: []\n")],
        None,
    );
    assert!(
        again.starts_with("b.yaml:1: campaign: campaign `water` is defined twice"),
        "{again}"
    );
}

/// Round 116: a file granting another campaign's table, and a purpose name copied into another
/// campaign's file with other members, load (both can be meant) but warn.
#[test]
fn grants_across_files_warn() {
    let water = "campaign: water\ntables: [w.*]\npurposes:\n  hotline:\n    members: [a]\n    tables:\n      w.customers: { columns: all }\n  review:\n    members: [qa]\n    tables:\n      w.tickets: { columns: all }\n";
    let survey = "campaign: survey\ntables: [s.*]\npurposes:\n  hotline:\n    members: [b]\n    tables:\n      s.answers: { columns: all }\n  interviews:\n    members: [c]\n    tables:\n      s.answers: { columns: all }\n      w.customers:\n        columns: { name: allow }\n  review:\n    members: [qa]\n    tables:\n      s.tickets: { columns: all }\n";
    let set = load_texts(&[("water.yaml", water), ("survey.yaml", survey)], None).unwrap();
    let warnings: Vec<String> = set.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("survey.yaml:12: interviews → w.customers:")
                && w.contains("belongs to campaign `water`")),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w
                .contains("purpose `hotline` is defined with different members in water.yaml [a] and survey.yaml [b]")),
        "{warnings:#?}"
    );
    // The same purpose with the same members in each file (the sample's quality review) is quiet,
    // and so is a file that only adds grants, listing no members (round 125).
    assert!(!warnings.iter().any(|w| w.contains("`review`")), "{warnings:#?}");
    let grants_only =
        "campaign: extra\ntables: [x.*]\npurposes:\n  review:\n    tables:\n      x.t: { columns: all }\n";
    let set = load_texts(&[("water.yaml", water), ("extra.yaml", grants_only)], None).unwrap();
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
}

/// Round 116: `{ mask: constant('[hidden]') }` unquoted ends at the bracket; the message says to quote it.
#[test]
fn an_unquoted_mask_with_brackets_is_explained() {
    let text = "campaign: water\ntables: [w.*]\npurposes:\n  hotline:\n    members: [a]\n    tables:\n      w.customers:\n        columns: { phone: { mask: constant('[hidden]') } }\n";
    let e = error(&[("water.yaml", text)], None);
    assert!(e.contains("quote such a mask"), "{e}");
    let quoted = text.replace("constant('[hidden]')", "\"constant('[hidden]')\"");
    assert!(load_texts(&[("water.yaml", &quoted)], None).is_ok());
}
