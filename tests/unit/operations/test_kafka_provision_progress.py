"""`kafka provision` shows Maven's progress (a count of the files fetched and copied) instead of minutes of
silence, and keeps its output for the error message."""

from operations.kafka_local import _run_with_progress

SCRIPT = "echo 'Downloaded from central: a.jar'; echo '[INFO] Copying a.jar to lib'; echo 'BUILD FAILURE'; exit 3"


def test_progress_counts_files_and_a_failure_keeps_its_output(capsys):
    code, output = _run_with_progress(["sh", "-c", SCRIPT], quiet=False)
    assert code == 3 and "BUILD FAILURE" in output
    err = capsys.readouterr().err
    assert "Kafka jars from Maven Central" in err and "2 files" in err


def test_quiet_prints_nothing(capsys):
    assert _run_with_progress(["sh", "-c", "echo 'Downloaded from x'"], quiet=True)[0] == 0
    assert capsys.readouterr().err == ""
