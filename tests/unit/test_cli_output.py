"""Download output: Go TiUP's line on a pipe or in a log (``pkg/repository/progress.go``:
``download <url> {{counters}}`` with cheggaaa/pb's byte units), and a terminal bar that
stays on one readable line at 60 columns, in binary units like everything else."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.progress import Progress

from tiup.cli import output


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.00 KiB"), (1536, "1.50 KiB"),
    (4_718_592, "4.50 MiB"), (3 << 30, "3.00 GiB"), (5 << 40, "5.00 TiB"),
])
def test_sizes_are_pbs_binary_units(n: int, text: str) -> None:
    assert output.human_bytes(n) == text


def test_the_log_line_is_gos_non_terminal_template() -> None:
    url = "https://tiup-mirrors.pingcap.com/tidb-v8.5.1-linux-amd64.tar.gz"
    assert output.download_line(url, 4_718_592, 4_718_592) == \
        f"download {url} 4.50 MiB / 4.50 MiB"
    assert output.download_line(url, 512, 0) == f"download {url} 512 B"


def test_a_download_leaves_one_line_without_a_terminal(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    with output.download_progress("/m/hello.tar.gz", "hello.tar.gz", 2048) as update:
        for done in range(0, 2049, 256):
            update(done, 2048)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "download /m/hello.tar.gz 2.00 KiB / 2.00 KiB\n"
    with pytest.raises(OSError), output.download_progress("/m/x", "x", 4096) as update:
        update(1024, 4096)
        raise OSError("connection reset")
    assert capsys.readouterr().err == "download /m/x 1.00 KiB / 4.00 KiB\n"  # how far it got


@pytest.mark.parametrize("width", [50, 60, 80, 120])
def test_the_terminal_bar_fits_on_one_line(width: int) -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=True, color_system=None)
    bar = Progress(*output.progress_columns(width), console=console, auto_refresh=False)
    task = bar.add_task("tidb-v8.5.1-linux-amd64.tar.gz", total=100 << 20)
    bar.update(task, completed=40 << 20)
    console.print(bar.make_tasks_table(bar.tasks))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert len(line) <= width
    assert line.startswith("tidb-v8.5") and "40.0/100.0 MiB" in line and "MiB/s" in line
    assert " MB" not in line


def test_long_work_leaves_a_line_per_tenth_in_a_log(capsys: pytest.CaptureFixture[str]) -> None:
    """Off a terminal a bar would be noise; long work (export, import, verify of tarballs)
    leaves one line per tenth done instead, and short work none."""
    total = 160 << 20  # above the threshold, and a multiple of the 5% steps below
    assert total >= output.LOG_PROGRESS_MIN
    update = output._log_progress("importing tarballs")
    for done in range(0, total + 1, 8 << 20):  # 21 updates, every other one a tenth
        update(done, total)
    update(total, total)  # a repeated last update adds nothing
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[2] for line in lines] == [f"{p}%" for p in range(10, 101, 10)]
    assert lines[-1] == "importing tarballs 100% (160.00 MiB / 160.00 MiB)"
    short = output._log_progress("exporting")
    short(1, output.LOG_PROGRESS_MIN - 1)
    short(output.LOG_PROGRESS_MIN - 1, output.LOG_PROGRESS_MIN - 1)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 tarballs"), (1, "1 tarball"), (2, "2 tarballs"),
])
def test_counts_agree_with_their_number(n: int, text: str) -> None:
    assert output.count(n, "tarball") == text
    assert output.count(1, "new version") == "1 new version"
    assert output.count(3, "entry", "entries") == "3 entries"
