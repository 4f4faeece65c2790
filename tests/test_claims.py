"""The claims ledger: well formed, its verdicts those of its evidence, its renderings up to date, and its
replay able to disagree."""

import dataclasses
from pathlib import Path

import pytest

from claims import checks, ledger, render
from claims.replay import replay

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = ledger.load()


def test_every_entry_has_every_field_and_a_known_verdict():
    assert len({e.id for e in ENTRIES}) == len(ENTRIES)
    assert {e.source for e in ENTRIES} == {"paper", "project"}
    for e in ENTRIES:
        assert e.verdict in ledger.VERDICTS and e.control and e.sensitivity and e.independent


def test_a_malformed_ledger_is_refused(tmp_path):  # the control of the loader's checks
    good = ledger.LEDGER.read_text(encoding="utf-8")
    bad = tmp_path / "ledger.toml"
    bad.write_text(good.replace('verdict = "fails"', 'verdict = "mostly"', 1), encoding="utf-8")
    with pytest.raises(ValueError, match="verdict must be one of"):
        ledger.load(bad)
    bad.write_text(good.replace('independent = "', 'unused = "', 1), encoding="utf-8")
    with pytest.raises(ValueError, match="independent"):
        ledger.load(bad)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if not e.pytest], ids=lambda e: e.id)
def test_ledger_verdict_is_its_committed_evidences(entry):
    record = ledger.evidence_record(entry)
    assert record["verdict"] == entry.verdict, f"{entry.id}: the evidence says {record['verdict']}"
    for field in ("statement", "scope", "control"):
        assert record.get(field), f"{entry.id}: its evidence lacks {field}"


def test_docs_and_readme_are_rendered_from_the_ledger():
    assert (ROOT / "docs" / "claims.md").read_text(encoding="utf-8") == render.render_docs(ENTRIES), (
        "docs/claims.md is out of date: python -m claims --render"
    )
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert render.render_readme_block(ENTRIES) in readme, (
        "README's findings are out of date: python -m claims --render"
    )
    findings = readme.split(render.BEGIN)[1].split(render.END)[0]
    assert findings.count("\n- **") == sum(bool(e.readme) for e in ENTRIES)  # no finding without an entry


def test_in_process_checks_replay_to_the_ledgers_verdicts():
    quick = checks.run(quick=True)["claims"]
    for e in ENTRIES:
        if e.evidence.get("file") == "claims/results/checks.json":
            assert quick[e.evidence["key"].split("/")[-1]]["verdict"] == e.verdict, e.id


@pytest.mark.slow
def test_a_replay_that_disagrees_is_reported(tmp_path):
    entry = next(e for e in ENTRIES if e.id == "L1")
    wrong = dataclasses.replace(entry, verdict="fails")  # the control: a ledger that says the wrong thing
    (agrees, disagrees) = replay([entry, wrong], tmp_path, quick=True, jobs=1)
    assert agrees["agrees"] and agrees["replayed"] == "holds" and agrees["error"] is None
    assert not disagrees["agrees"] and disagrees["replayed"] == "holds"
