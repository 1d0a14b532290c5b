"""The ``test_connection`` job: Test Connection for every configured source, from the UI."""

import dagster as dg

from passport_pipeline.config import PassportConfig
from passport_pipeline.connection_check import check_sources, format_report
from passport_pipeline.defs.scrubbed import scrubbed_logs


@dg.op(
    out=dg.Out(dg.Nothing),
    description="Authenticate to each source and read one page of each entity endpoint: what works, "
    "what is forbidden (and which scope is missing), latency, page-size clamps, schools seen.",
)
@scrubbed_logs
def check_connections(context: dg.OpExecutionContext, sources: dg.ResourceParam[PassportConfig]):
    reports = check_sources(sources)
    for report in reports:
        context.log.info(report.text())
    yield dg.Output(None, metadata={
        "usable sources": sum(r.usable for r in reports),
        "sources": len(reports),
        "report": dg.MetadataValue.md("\n\n".join(r.to_markdown() for r in reports)),
    })
    if not all(r.usable for r in reports):
        raise dg.Failure(description=format_report(reports))


@dg.job(description="Test Connection: can every configured source be synced, and if not, what to fix.")
def test_connection():
    check_connections()
