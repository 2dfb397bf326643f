"""MkDocs hooks: the settings reference is rendered from ``Settings.model_fields`` at build time, so it cannot
drift from the code; the home page is the README (its links into docs/ rewritten), so the two cannot drift apart;
and the committed benchmark results are published beside the pages (``results/...``), so the
pages link them instead of copying their tables."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "data" / "results"
MARKER = "<!-- settings-table -->"
README_MARKER = "<!-- the README -->"


def readme_page() -> str:
    """The README as the site's home page: links into docs/ lose their folder, as the pages live there."""
    return (ROOT / "README.md").read_text().replace("](docs/", "](")


def on_files(files, config):
    for path in sorted(p for p in RESULTS.rglob("*") if p.is_file()):
        uri = "results/" + path.relative_to(RESULTS).as_posix()
        if path.suffix == ".md":  # shown as files, not pages: they are outputs, outside the navigation
            uri += ".txt"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown, page, config, files):
    if README_MARKER in markdown:
        return readme_page()
    if MARKER not in markdown:
        return markdown
    from adq.core.reference import settings_table

    return markdown.replace(MARKER, settings_table())
