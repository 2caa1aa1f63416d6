"""Job runner helpers: atomic writers and the temporary files of killed writers, the closing summary of a run."""

from __future__ import annotations

import ast
import gzip
import os
from pathlib import Path

import pytest

import conceptscope
from conceptscope.runtime import (
    remove_stale_temporaries,
    run_summary,
    save_figure,
    save_image,
    temporary_path,
    write_json,
    write_table,
    write_text,
)


def test_temporaries_of_killed_writers_are_removed_and_nothing_else(tmp_path):
    results = tmp_path / "results"
    (results / "activations/m/test").mkdir(parents=True)
    keep = [results / "activations/m/test/fc.h5", results / "activations/m/test/.hidden_but_final.h5"]
    for p in keep:
        p.write_text("x")
    stale = [
        temporary_path(results / "activations/m/test/conv1.h5"),
        results / "naps/m/test/fc/.max.h5.tmp",
        results / ".browser.html.tmp123",
    ]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("half")
    assert temporary_path(keep[0]).name == f".fc.h5.tmp{os.getpid()}"
    assert sorted(remove_stale_temporaries(results)) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)
    assert remove_stale_temporaries(tmp_path / "absent") == []


def test_hints_repeat_how_snakemake_was_called(tmp_path, monkeypatch):
    from conceptscope.runtime import snakemake_command

    monkeypatch.chdir(tmp_path)
    assert snakemake_command(str(tmp_path / ".venv/bin/snakemake")) == ".venv/bin/snakemake"
    assert snakemake_command("/opt/tools/bin/snakemake") == "/opt/tools/bin/snakemake"
    assert snakemake_command("/usr/lib/python3/site-packages/snakemake/__main__.py") == "snakemake"  # python -m
    text = run_summary(tmp_path / "results", [], ".venv/bin/snakemake")
    assert f".venv/bin/snakemake --report {tmp_path / 'results' / 'report.html'}" in text


def test_the_run_summary_counts_verdicts_and_lists_pages(tmp_path):
    results = tmp_path / "results"
    (results / "reproduction").mkdir(parents=True)
    (results / "reproduction/claims.csv").write_text(
        "claim_id,verdict\nNAP-1,PASS\nNAP-2,FAIL\nNAP-3,NOT RUN\nNAP-4,PASS\n"
    )
    for page in ("naps/m/browser.html", "nas/m/fc/summary.html", "neurflow/m/class0/circuit.html"):
        (results / page).parent.mkdir(parents=True, exist_ok=True)
        (results / page).write_text("<html></html>")
    text = run_summary(results)
    assert "atlas" not in text  # no index page yet
    (results / "index.html").write_text("<html></html>")
    text = run_summary(results)
    assert text.splitlines()[2] == f"  start here, the atlas of every method's concepts: {results / 'index.html'}"
    assert "claims: 2 PASS, 1 FAIL, 1 NOT RUN" in text
    assert str(results / "reproduction/claims.md") in text and "HTML pages (3" in text
    assert f"snakemake --report {results / 'report.html'}" in text


def test_a_moved_working_directory_is_named_in_every_path_and_the_report_command(tmp_path, monkeypatch):
    work = tmp_path / "runs/planted"
    (work / "results/naps/m").mkdir(parents=True)
    (work / "results/index.html").write_text("<html></html>")
    (work / "results/naps/m/browser.html").write_text("<html></html>")
    monkeypatch.chdir(work)  # where Snakemake runs the onsuccess handler under -d
    text = run_summary("results", ["config/planted.yaml"], "snakemake", "runs/planted")
    assert "the atlas of every method's concepts: runs/planted/results/index.html" in text
    assert "    runs/planted/results/naps/m/browser.html" in text
    assert "snakemake -d runs/planted --report results/report.html --configfile config/planted.yaml" in text


def test_the_report_command_repeats_the_runs_config_files(tmp_path):
    text = run_summary(tmp_path / "results", ["my.yaml", "changes.yaml"])
    assert f"snakemake --report {tmp_path / 'results' / 'report.html'} --configfile my.yaml changes.yaml" in text


def test_atomic_path_renames_when_complete_and_keeps_the_old_file_on_failure(tmp_path):
    from conceptscope.runtime import atomic_path

    out = tmp_path / "circuit.json"
    with atomic_path(out) as tmp:
        assert tmp.parent == out.parent and tmp.name.startswith(".circuit.json.tmp")
        tmp.write_text("new")
        assert not out.exists()  # nothing at the output until the block ends
    assert out.read_text() == "new"
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert out.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["circuit.json"]


# -- the atomic writers ------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _HalfWriter:
    """Writes part of its output to the path it is given, then fails (a job killed mid-write)."""

    def _half(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise RuntimeError("killed mid-write")

    to_csv = savefig = save = _half


def _untouched(out: Path, old: bytes) -> bool:
    """``out`` still holds ``old`` and nothing else (no temporary) lies beside it."""
    return out.read_bytes() == old and [p.name for p in out.parent.iterdir()] == [out.name]


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("t.csv", lambda out: write_table(_HalfWriter(), out)),
        ("f.png", lambda out: save_figure(_HalfWriter(), out)),
        ("i.png", lambda out: save_image(_HalfWriter(), out)),
        ("s.txt", lambda out: write_text(out, "ok \udcff")),  # not encodable: fails after the file is opened
        ("m.json", lambda out: write_json(out, {"x": object()})),
    ],
)
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, name, write):
    out = tmp_path / name
    out.write_bytes(b"old")
    with pytest.raises((RuntimeError, UnicodeEncodeError, TypeError)):
        write(out)
    assert _untouched(out, b"old")


def test_text_json_and_tables_are_written_complete_with_their_folders(tmp_path):
    import pandas as pd

    table = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert write_table(table, tmp_path / "new/t.csv", index=False) == tmp_path / "new/t.csv"
    assert pd.read_csv(tmp_path / "new/t.csv").equals(table)
    write_table(table, tmp_path / "t.csv.gz", index=False)  # the compression of the real suffix is kept
    assert gzip.decompress((tmp_path / "t.csv.gz").read_bytes()).decode() == "a,b\n1,x\n2,y\n"
    write_text(tmp_path / "deep/s.txt", "naïve\n")
    assert (tmp_path / "deep/s.txt").read_text(encoding="utf-8") == "naïve\n"
    write_json(tmp_path / "m.json", {"x": [1, 2]})
    assert (tmp_path / "m.json").read_text() == '{\n  "x": [\n    1,\n    2\n  ]\n}\n'
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary left


def test_figures_keep_the_format_of_their_suffix_and_fail_without_a_partial_file(tmp_path):
    from matplotlib.artist import Artist
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "f.png", dpi=50)
    save_figure(fig, tmp_path / "f.pdf")
    assert (tmp_path / "f.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (tmp_path / "f.pdf").read_bytes().startswith(b"%PDF")

    class Broken(Artist):
        def draw(self, renderer):
            raise RuntimeError("cannot draw")

    fig.add_artist(Broken())
    old = (tmp_path / "f.pdf").read_bytes()
    with pytest.raises(RuntimeError, match="cannot draw"):
        save_figure(fig, tmp_path / "f.pdf")  # the PDF backend opens its file before drawing
    assert (tmp_path / "f.pdf").read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png"]


def test_images_keep_the_format_of_their_suffix(tmp_path):
    from PIL import Image

    im = Image.new("RGB", (4, 3), (200, 10, 10))
    save_image(im, tmp_path / "i.png")
    save_image(im, tmp_path / "i.jpg")
    assert (tmp_path / "i.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (tmp_path / "i.jpg").read_bytes().startswith(b"\xff\xd8")
    with pytest.raises(ValueError, match="no image format"):
        save_image(im, tmp_path / "i.unknown")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.jpg", "i.png"]


# -- no result is written in place ------------------------------------------------------------------

SRC = Path(conceptscope.__file__).parent

# (module, function) -> why its write is atomic though the scan cannot see it. Keep this short.
ALLOWED = {
    ("activations.py", "_atomic_files"): "opens one temporary_path per cache file, renames all of them only when "
    "every one is complete and unlinks them in a finally",
}

_WRITE_FIRST = {"to_csv", "savefig", "to_json", "to_parquet", "to_html", "to_excel", "to_pickle", "savez"}
_WRITE_FIRST |= {"savez_compressed", "write_html", "write_image", "imwrite", "imsave", "save"}
_WRITE_SELF = {"write_text", "write_bytes"}
_IN_MEMORY = {"BytesIO", "StringIO"}


def _name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _arg(call: ast.Call, index: int, *keywords: str) -> ast.expr | None:
    if len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg in keywords), None)


def _writes_with(mode: ast.expr | None, default: str) -> bool:
    if mode is None:
        return any(c in default for c in "wax+")
    return not isinstance(mode, ast.Constant) or any(c in str(mode.value) for c in "wax+")


def _target(call: ast.Call) -> ast.expr | None:
    """The file a call writes (an expression), or None when it writes no file."""
    f = call.func
    if isinstance(f, ast.Name) and f.id == "open":
        return call.args[0] if call.args and _writes_with(_arg(call, 1, "mode"), "r") else None
    if not isinstance(f, ast.Attribute):
        return None
    if f.attr == "open":  # Path.open(mode) or gzip.open(path, mode)
        first = call.args[0] if call.args else None
        if first is None or isinstance(first, ast.Constant):
            return f.value if _writes_with(_arg(call, 0, "mode"), "r") else None
        return first if _writes_with(_arg(call, 1, "mode"), "r") else None
    if f.attr == "File":  # h5py.File(path, mode)
        return call.args[0] if call.args and _writes_with(_arg(call, 1, "mode"), "r") else None
    if f.attr in _WRITE_SELF:
        return f.value
    if f.attr in ("dump", "safe_dump"):  # json / yaml / pickle .dump(obj, file)
        return _arg(call, 1, "fp", "stream", "file")
    if f.attr == "save" and _name(f.value) == "torch":
        return _arg(call, 1, "f")
    if f.attr in _WRITE_FIRST:
        return _arg(call, 0, "path_or_buf", "fname", "fp", "file", "path")
    return None


class _Scan(ast.NodeVisitor):
    """Calls that write a file other than a temporary of an enclosing ``with atomic_path(...) as tmp``."""

    def __init__(self, module: str):
        self.module, self.functions, self.safe, self.found = module, [""], [set()], []

    def visit_FunctionDef(self, node):
        in_memory = {
            t.id
            for n in ast.walk(node)
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call) and _name(n.value.func) in _IN_MEMORY
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        self.functions.append(node.name)
        self.safe.append(self.safe[-1] | in_memory)
        self.generic_visit(node)
        self.safe.pop()
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_With(self, node):
        safe = set(self.safe[-1])
        self.safe.append(safe)
        for item in node.items:
            self.visit(item.context_expr)
            expr, var = item.context_expr, item.optional_vars
            if isinstance(expr, ast.Call) and isinstance(var, ast.Name):
                target = _target(expr)
                if _name(expr.func) == "atomic_path" or (isinstance(target, ast.Name) and target.id in safe):
                    safe.add(var.id)  # the temporary, or a handle opened on it
        for stmt in node.body:
            self.visit(stmt)
        self.safe.pop()

    visit_AsyncWith = visit_With

    def visit_Call(self, node):
        target = _target(node)
        temporary = isinstance(target, ast.Name) and target.id in self.safe[-1]
        if target is not None and not temporary and _name(target) != "devnull":  # os.devnull is no file
            self.found.append((self.module, self.functions[-1], f"{self.module}:{node.lineno}: {ast.unparse(node)}"))
        self.generic_visit(node)


def _in_place_writes() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        scan = _Scan(path.relative_to(SRC).as_posix())
        scan.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found += scan.found
    return found


def test_the_scan_sees_in_place_writes_and_accepts_temporaries():
    code = """
def bad(table, fig, path, obj):
    table.to_csv(path)
    fig.savefig(path, dpi=9)
    Path(path).write_text("x")
    torch.save(obj, path)
    with open(path, "w") as fh:
        json.dump(obj, fh)
    with path.open("wb") as fh:
        pass
    h5py.File(path, "a")
    im.save(path)

def good(table, fig, path, obj, im):
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        json.dump(obj, fh)
        table.to_csv(tmp)
        torch.save(obj, tmp)
    with atomic_path(path) as t, h5py.File(t, "w") as f:
        f.attrs["x"] = 1
    buf = io.BytesIO()
    im.save(buf)
    text = table.to_csv()
    open(path).read(), path.open(), h5py.File(path), h5py.File(path, "r")
    with open(path, "rb") as fh:
        pass
"""
    scan = _Scan("example.py")
    scan.visit(ast.parse(code))
    assert [(func, where.split(": ", 1)[1]) for _, func, where in scan.found] == [
        ("bad", "table.to_csv(path)"),
        ("bad", "fig.savefig(path, dpi=9)"),
        ("bad", "Path(path).write_text('x')"),
        ("bad", "torch.save(obj, path)"),
        ("bad", "open(path, 'w')"),
        ("bad", "json.dump(obj, fh)"),
        ("bad", "path.open('wb')"),
        ("bad", "h5py.File(path, 'a')"),
        ("bad", "im.save(path)"),
    ]


def test_no_result_file_is_written_in_place():
    """Every writer in src/conceptscope goes through conceptscope.runtime (write_table, save_figure, save_image,
    write_text, write_json, or ``with atomic_path(out) as tmp``), so a killed job leaves no partial file."""
    found = _in_place_writes()
    offenders = [w for m, f, w in found if (m, f) not in ALLOWED]
    assert offenders == [], "write these through conceptscope.runtime:\n" + "\n".join(offenders)
    used = {(m, f) for m, f, _ in found}
    assert [k for k in ALLOWED if k not in used] == [], "allowed writes that are gone: remove them from ALLOWED"


def test_permutation_p_value_counts_the_observed_value_as_a_draw():
    from conceptscope.nulls import permutation_p_value

    null = [0.1, 0.5, 0.5, 0.9]
    assert permutation_p_value(0.5, null) == pytest.approx(4 / 5)  # 0.5, 0.5, 0.9 reach it, plus the observed
    assert permutation_p_value(1.0, null) == pytest.approx(1 / 5)  # never 0
    assert permutation_p_value(0.5 + 1e-13, null, tolerance=1e-12) == pytest.approx(4 / 5)
    assert permutation_p_value(0.5 + 1e-13, null) == pytest.approx(2 / 5)
    assert permutation_p_value(0.3, []) != permutation_p_value(0.3, [])  # NaN
