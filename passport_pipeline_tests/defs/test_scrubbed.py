"""A step's logs and events reach Dagster's storage, console and compute logs scrubbed of secrets."""

import base64

import dagster as dg
import pytest

from passport_pipeline.defs.scrubbed import scrubbed_logs
from passport_pipeline.redaction import remember

SECRET = "dagster-Canary-4Fq9"
BASIC = base64.b64encode(f"someone:{SECRET}".encode()).decode()


def steps(decorate):
    """A job whose steps say the secret every way a step can: a log line, metadata, a failure's
    description and metadata, and an error escaping with it in its message."""

    @dg.asset
    @decorate
    def talks(context: dg.AssetExecutionContext):
        context.log.info(f"token request sent Basic {BASIC}")
        yield dg.MaterializeResult(metadata={"said": SECRET, "as markdown": dg.MetadataValue.md(f"`{SECRET}`")})

    @dg.asset(deps=[talks])
    @decorate
    def fails(context: dg.AssetExecutionContext) -> None:
        context.log.warning("about to fail")
        raise dg.Failure(description=f"refused: {SECRET}", metadata={"echo": BASIC})

    @dg.asset
    @decorate
    def breaks(context: dg.AssetExecutionContext) -> None:
        raise ValueError(f"a bug holding {SECRET}")

    return dg.Definitions(assets=[talks, fails, breaks],
                          jobs=[dg.define_asset_job("talk", executor_def=dg.in_process_executor)])


@pytest.mark.parametrize("decorate", [scrubbed_logs, lambda step: step], ids=["scrubbed", "not scrubbed"])
def test_what_steps_tell_dagster_is_stored_and_printed_scrubbed(tmp_path, capfd, decorate):
    remember(SECRET)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = steps(decorate).resolve_job_def("talk").execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    printed = "".join(capfd.readouterr())
    stored = "".join(path.read_bytes().decode("utf-8", "replace") for path in tmp_path.rglob("*") if path.is_file())
    assert "about to fail" in stored, "the events were stored"

    leaked = {where: [secret for secret in (SECRET, BASIC) if secret in text]
              for where, text in {"stored": stored, "printed": printed}.items()}
    if decorate is scrubbed_logs:
        assert leaked == {"stored": [], "printed": []}
        assert "refused: ***" in stored and "a bug holding ***" in printed
    else:
        assert leaked == {"stored": [SECRET, BASIC], "printed": [SECRET, BASIC]}, "the test can fail"
