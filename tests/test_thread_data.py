"""The thread as data: every file validates, quotes are verbatim, malformed rows give clear errors."""

import shutil

import pytest
import yaml

from allocsim.facts import thread
from allocsim.pages import thread as thread_views
from allocsim.facts.errors import DataError


def test_all_files_load():
    assert len(thread.people()) >= 4
    tl = thread.timeline()
    assert tl["date"].is_monotonic_increasing
    c = thread.claims()
    # every quantitative claim the issue lists is present
    ids = set(c["id"])
    for needed in ("patch-gain", "module-10pct", "default-capacity-26", "k32-no-difference", "k128-multithread",
                   "k128-single", "iops-70-pcpu", "iops-70-kmalloc", "iops-70-sheaf256", "iops-619-pcpu",
                   "iops-619-kmalloc", "iops-619-sheaf256"):
        assert needed in ids


def test_every_quote_is_verbatim():
    for q in thread.claims()["quote"]:
        assert thread.quote_in_thread(q)
    assert not thread.quote_in_thread("the read performance of io_uring is improved by about 3.6%")


def test_iops_figures_and_arithmetic():
    f = thread.iops_figures().set_index(["kernel", "allocator"])["miops"]
    assert f["6.19", "kmalloc"] == pytest.approx(1.17)
    assert thread_views.pct_gain(f["6.19", "per-CPU list"], f["6.19", "kmalloc"]) == pytest.approx(2.564, abs=1e-3)
    assert thread_views.ns_saved(f["7.0-rc4", "per-CPU list"], f["7.0-rc4", "sheaf-256"]) == pytest.approx(7.0028, abs=1e-3)


def _write_claims(tmp_path, mutate):
    rows = yaml.safe_load((thread.THREAD_DIR / "claims.yaml").read_text())
    mutate(rows)
    p = tmp_path / "claims.yaml"
    p.write_text(yaml.safe_dump(rows, allow_unicode=True, sort_keys=False))
    return p


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r[2].update(unit="percent"), r"claims\.yaml, row 3 \(id 'module-10pct'\): field 'unit' is 'percent'; allowed units"),
    (lambda r: r[0].pop("quote"), r"row 1 \(id 'patch-gain'\): field 'quote' is missing"),
    (lambda r: r[1].update(value="about ten"), r"row 2 \(id 'sheaf-70rc3-io'\): field 'value' is 'about ten', which is not a number"),
    (lambda r: r[4].update(date="March"), r"row 5 \(id 'k32-no-difference'\): field 'date' is 'March', which is not a date"),
    (lambda r: r[0].update(quote="improved by about 26%"), r"row 1 \(id 'patch-gain'\): field 'quote' does not appear verbatim"),
    (lambda r: r[5].update(low=5), r"row 6 \(id 'k128-multithread'\): fields 'low' and 'high' must both be empty or bracket"),
    (lambda r: r[0].update(author="linus"), r"row 1 \(id 'patch-gain'\): field 'author' is 'linus'; known people"),
    (lambda r: r[0].update(setup=""), r"row 1 \(id 'patch-gain'\): field 'setup' is empty"),
    (lambda r: r[1].update(id="patch-gain"), r"row 2 \(id 'patch-gain'\): field 'id' repeats"),
    (lambda r: r[0].update(colour="red"), r"row 1 \(id 'patch-gain'\): unknown field 'colour'"),
])
def test_malformed_claim_rows_name_file_row_and_field(tmp_path, mutate, message):
    p = _write_claims(tmp_path, mutate)
    with pytest.raises(DataError, match=message):
        thread.claims(p)


def test_malformed_yaml_names_the_file(tmp_path):
    p = tmp_path / "claims.yaml"
    p.write_text("- id: x\n  value: [unclosed\n")
    with pytest.raises(DataError, match="claims.yaml is not valid YAML"):
        thread.claims(p)


def test_timeline_rejects_unknown_kind(tmp_path):
    rows = yaml.safe_load((thread.THREAD_DIR / "timeline.yaml").read_text())
    rows[0]["kind"] = "tweet"
    p = tmp_path / "timeline.yaml"
    p.write_text(yaml.safe_dump(rows, sort_keys=False))
    with pytest.raises(DataError, match=r"timeline.yaml, row 1 \(id 'sheaves-commit'\): field 'kind' is 'tweet'"):
        thread.timeline(p)


def test_pending_claims_render_as_pending():
    md = thread_views.claims_markdown()
    links = thread_views.chapter_links()
    for r in thread.claims().itertuples():
        line = next(line for line in md.splitlines() if r.quote in line)
        if r.tested_in in links:
            assert "{doc}" in line
        else:
            assert line.rstrip().endswith("| pending |")
