"""Slurm templates: rendering (bash syntax, parameters, shares, images) and one-line errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from saturate.cli import main
from saturate.errors import ConfigError
from scans.jobs.slurm import parse_params, render

BASE = {"partition": "gpu", "time": "00:30:00"}


def params(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**BASE, "out": str(tmp_path / "out"), **extra}


@pytest.mark.parametrize("name", ["a", "b", "c", "scan", "server", "client", "multinode", "pair"])
def test_every_template_renders_to_valid_bash(name: str, tmp_path: Path) -> None:
    scripts = render(name, params(tmp_path, concurrency="2:6:2", gres="gpu:2"))
    assert scripts
    for job in scripts:
        assert "{{" not in job.text and job.text.startswith("#!/bin/bash\n")
        assert "#SBATCH --partition=gpu\n" in job.text and "#SBATCH --time=00:30:00\n" in job.text
        assert "trap teardown EXIT" in job.text  # teardown on exit, cancel and time limit
        if job.name != "client" and job.name != "multinode":
            assert "#SBATCH --gres=gpu:2\n" in job.text
        bash = shutil.which("bash")
        assert bash is not None
        subprocess.run([bash, "-n"], input=job.text, text=True, check=True)


def test_parameters_reach_the_script(tmp_path: Path) -> None:
    (job,) = render("a", params(tmp_path, model="mlp", batch_sizes="1,8", concurrency="1:3",
                                 measurement_interval="700", engine="perf_analyzer"))
    out = str((tmp_path / "out").resolve())
    for line in (f"OUT={out}", "MODEL=mlp", "BATCH_SIZES=1,8", "CONCURRENCY=1:3", "INTERVAL_MS=700",
                 "ENGINE=perf_analyzer", f"#SBATCH --output={out}/slurm-%j.out"):
        assert line + "\n" in job.text, line
    assert "#SBATCH --gres" not in job.text
    assert "/v2/models/$MODEL/ready" in job.text and "READY_TIMEOUT=300" in job.text


def test_multinode_splits_the_concurrency_over_ranks(tmp_path: Path) -> None:
    (job,) = render("c", params(tmp_path, ranks="3", nodes="3", concurrency="3:7:2",
                                 measurement_interval="1000", max_trials="5"))
    assert "SHARES='1,1,1;2,2,1;3,2,2'\n" in job.text
    assert "#SBATCH --ntasks=3\n" in job.text and "#SBATCH --nodes=3\n" in job.text
    assert "LEVEL_PERIOD_S=25\n" in job.text  # 5 windows of 1 s + 20 s slack
    assert "--start-at" in job.text and "--latency-file" in job.text and "merge -o" in job.text


def test_images_become_apptainer_prefixes(tmp_path: Path) -> None:
    img, sdk = tmp_path / "server.sif", tmp_path / "sdk.sif"
    img.write_text("x")
    sdk.write_text("x")
    (job,) = render("a", params(tmp_path, image=str(img), sdk_image=str(sdk), gpu="nvidia"))
    out = str((tmp_path / "out").resolve())
    assert f"RUN='apptainer exec --nv --bind {out} {img}'\n" in job.text
    assert f"SDK_ARGS='--image {sdk} --gpu nvidia'\n" in job.text
    assert "SAT=saturate " in job.text and f"HSAT='{sys.executable} -m saturate'" in job.text
    assert "$RUN $SAT serve" in job.text and "$HSAT pa $SDK_ARGS" in job.text
    with pytest.raises(ConfigError, match=r"nope\.sif not found"):
        render("a", params(tmp_path, image=str(tmp_path / "nope.sif")))


def test_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs partition"):
        render("a", {"time": "1", "out": str(tmp_path)})
    with pytest.raises(ConfigError, match="unknown parameter"):
        parse_params(["colour=blue"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_params(["partition"])
    with pytest.raises(ConfigError, match="whole number"):
        render("a", params(tmp_path, max_trials="ten"))
    with pytest.raises(ConfigError, match="every rank needs"):
        render("c", params(tmp_path, ranks="4", concurrency="2:8:2"))
    with pytest.raises(ConfigError, match="unknown job template"):
        render("z", params(tmp_path))


def test_cli_errors_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["job", "render", "a", "-P", "time=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs partition, out" in err[0] and "--param partition=VALUE" in err[0]
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    assert main(["job", "submit", "a", "-P", "partition=p", "-P", "time=1", "-P", f"out={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sbatch not found" in err[0]
    assert main(["job", "render", "b", "-P", "partition=p", "-P", "time=1", "-P", f"out={tmp_path}",
                 "-o", str(tmp_path / "scripts")]) == 0
    assert sorted(p.name for p in (tmp_path / "scripts").iterdir()) == ["client.sbatch", "server.sbatch"]
    # -o naming an existing directory (a second render, or any template): NAME.sbatch inside it
    for template in ("b", "a"):
        assert main(["job", "render", template, "-P", "partition=p", "-P", "time=1", "-P", f"out={tmp_path}",
                     "-o", str(tmp_path / "scripts")]) == 0
    assert sorted(p.name for p in (tmp_path / "scripts").iterdir()) == [
        "client.sbatch", "scan.sbatch", "server.sbatch"]


def test_submit_command_lines_with_a_recording_sbatch(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir, record = tmp_path / "bin", tmp_path / "sbatch.tsv"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(f"#!{sys.executable}\nimport sys\nwith open({str(record)!r}, 'a') as f:\n"
                      "    f.write('\\t'.join(sys.argv[1:]) + '\\n')\n"
                      f"print(40 + len(open({str(record)!r}).readlines()))\n")
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))  # sbatch, but no apptainer
    out = tmp_path / "run"
    base = ["job", "submit", "b", "-P", "partition=p", "-P", "time=5", "-P", f"out={out}"]
    assert main([*base, "--sbatch-arg=--account=abc"]) == 0
    assert capsys.readouterr().out.split() == ["server", "41", "client", "42"]
    server, client = [line.split("\t") for line in record.read_text().splitlines()]
    assert server == ["--parsable", "--account=abc", str((out / "job-server.sbatch").resolve())]
    assert client[:4] == ["--parsable", "--account=abc", "--dependency=after:41",
                          "--export=ALL,SATURATE_SERVER_JOB=41"]
    assert (out / "job-client.sbatch").read_text().startswith("#!/bin/bash")
    image = tmp_path / "server.sif"
    image.write_text("x")
    assert main([*base, "-P", f"image={image}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apptainer not found" in err[0]
