"""Airflow adapters for the S3 -> S3 mirror (datamover.mirror): plan, mapped copy, summary.

plan = S3MirrorPlanOperator(task_id="plan", scope="{{ params.scope }}", shards="{{ params.shards }}")
copy = S3MirrorOperator.partial(task_id="copy").expand(shard=plan.output)
copy >> S3MirrorSummaryOperator(task_id="summary", copy_task_id="copy", trigger_rule="all_done")
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from datamover.errors import ConfigError, TransferError
from datamover.hooks.pushgateway import PushgatewayHook
from datamover.hooks.s3 import ObjectStoreHook
from datamover.lineage import DatasetName, s3_object
from datamover.mirror.engine import Mirror, MirrorOptions, MirrorResult, Side, check_side
from datamover.mirror.listing import KeyRange, flatten, list_pages, scope_prefix
from datamover.mirror.metrics import summary_registry
from datamover.mirror.plan import split_ranges
from datamover.operators.base import fail_fast, settle_heap
from datamover.operators.lineage import LineageMixin
from datamover.s3 import head_or_none, strip_etag
from datamover.units import MIB

SHARD_RESULT_KEY = "shard_result"


def _side(conn_id: str, alias: str, pool: int = 48) -> Side:
    hook = ObjectStoreHook(conn_id)
    return Side(client=hook.client(pool=pool), path=hook.path(), label=conn_id, alias=alias)


def scope_dataset(side: Side, scope: str) -> DatasetName:
    """The folder one shard mirrors (a shard is a key range of it: lineage names the folder)."""
    return s3_object(side.path.bucket, scope_prefix(side.path, scope))


def run_dates(context: Any) -> list[str]:
    """The date folders of this run, with egress_dump's convention (folder = data interval start):
    the dates of every dump asset event the run consumed (several when runs of the dump queued up, e.g.
    after a backfill), else the data interval start, else the logical date, else the day it was queued."""
    dates = {
        date for events in (context.get("triggering_asset_events") or {}).values() for date in _dates(events)
    }
    if dates:
        return sorted(dates)
    when = context.get("data_interval_start") or context.get("logical_date") or context["dag_run"].run_after
    return [when.strftime("%Y-%m-%d")]


def recent_event_dates(context: Any, limit: int) -> list[str]:
    """The dates of the latest `limit` events of the task's inlet assets, whoever consumed them.

    Airflow 3.3 can leave an event unconsumed: one that arrives while an asset-triggered run is already
    queued, or while the DAG is at max_active_runs, is skipped by the run the queue creates and waits for
    a later event (apache/airflow#56050). The plan looks back over recent events so that no dump day is
    left behind, and only mirrors those whose manifest is not at the destination yet."""
    if limit <= 0:
        return []
    inlet_events = context.get("inlet_events")
    return sorted(
        {
            date
            for inlet in context["task"].inlets or []
            for date in _dates(inlet_events[inlet].ascending(False).limit(limit))
        }
    )


def _dates(events: Iterable[Any]) -> set[str]:
    """The `date` (a dump's day folder) each asset event carries in its extra."""
    return {
        str(extra["date"]) for event in events if (extra := getattr(event, "extra", None) or {}).get("date")
    }


def _unmirrored(source: Side, dest: Side, day: str, marker: str) -> bool:
    """True when the day's completion marker (written last by the producer) is at the source and not,
    or not the same, at the destination."""
    at_source = head_or_none(source.client, source.path.bucket, source.path.key(day, marker))
    if at_source is None:
        return False
    at_dest = head_or_none(dest.client, dest.path.bucket, dest.path.key(day, marker))
    return at_dest is None or strip_etag(at_dest.get("ETag")) != strip_etag(at_source.get("ETag"))


class S3MirrorPlanOperator(LineageMixin, BaseOperator):
    """Check both connections (wrong keys fail at once, no retry), create the destination bucket if
    missing, and cut the source key space into `shards` key ranges: one mapped copy task each.
    Lineage: the source folders it lists (nothing written)."""

    template_fields: Sequence[str] = (
        "source_conn_id",
        "dest_conn_id",
        "scope",
        "shards",
        "remove_extraneous",
        "max_delete",
    )
    ui_color = "#e4ecf7"

    def __init__(
        self,
        *,
        source_conn_id: str = "egress_input",
        dest_conn_id: str = "egress_output",
        scope: str = "all",
        shards: int | str = 1,
        remove_extraneous: bool | str = False,
        max_delete: int | str = 1000,
        create_dest_bucket: bool = True,
        recheck_events: int = 30,
        complete_marker: str = "_manifest.json",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.recheck_events = recheck_events
        self.complete_marker = complete_marker
        self.source_conn_id = source_conn_id
        self.dest_conn_id = dest_conn_id
        self.scope = scope
        self.shards = shards
        self.remove_extraneous = remove_extraneous
        self.max_delete = max_delete
        self.create_dest_bucket = create_dest_bucket

    def execute(self, context: Any) -> list[dict[str, Any]]:
        with fail_fast():
            return self._plan(context)

    def _plan(self, context: Any) -> list[dict[str, Any]]:
        scope = str(self.scope or "all").strip()
        folders = [""] if scope == "all" else run_dates(context) if scope == "day" else [scope.strip("/")]
        shards = self.shards
        if not isinstance(shards, int) or isinstance(shards, bool) or not 1 <= shards <= 256:
            raise ConfigError(f"param shards={shards!r}: use a whole number 1..256.")
        source, dest = _side(self.source_conn_id, "input", 4), _side(self.dest_conn_id, "output", 4)
        self.log.info("%s", check_side(source))
        self.log.info("%s", check_side(dest, create_missing=self.create_dest_bucket))
        if scope == "day":
            behind = [
                day
                for day in recent_event_dates(context, self.recheck_events)
                if day not in folders and _unmirrored(source, dest, day, self.complete_marker)
            ]
            if behind:
                self.log.info("Also mirroring %s: dumped (recent asset events), not yet mirrored", behind)
                folders = sorted({*folders, *behind})
        plan = []
        self.lineage(inputs=[scope_dataset(source, folder) for folder in folders])
        for folder in folders:
            ranges = [KeyRange()]
            if shards > 1:
                ranges = split_ranges(
                    flatten(list_pages(source.client, source.path, folder, label=source.label)), shards
                )
            self.log.info(
                "Mirror %s -> %s, scope %r, %d shard(s)", source.path, dest.path, folder or "all", len(ranges)
            )
            plan += [
                {
                    "scope": folder,
                    "key_range": r.to_dict(),
                    "remove_extraneous": self.remove_extraneous is True,
                    "max_delete": 1000 if self.max_delete is None else int(self.max_delete),
                }
                for r in ranges
            ]
        return plan


class S3MirrorOperator(LineageMixin, BaseOperator):
    """Mirror one shard (scope + key range) from source to destination; log one line per object and
    the summary; push the shard's result to XCom (key `shard_result`) even when objects failed, then
    fail if any did, so Airflow retries the shard (a rerun only copies what is still missing).
    Lineage: the source folder -> the destination folder (S3 -> Ceph)."""

    template_fields: Sequence[str] = ("source_conn_id", "dest_conn_id", "shard")
    ui_color = "#cfe3f7"

    def __init__(
        self,
        *,
        shard: dict[str, Any] | None = None,
        source_conn_id: str = "egress_input",
        dest_conn_id: str = "egress_output",
        object_workers: int = 32,
        part_workers: int = 16,
        part_size_mib: int = 8,
        max_buffer_mib: int = 256,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.shard = shard or {}
        self.source_conn_id = source_conn_id
        self.dest_conn_id = dest_conn_id
        self.object_workers = object_workers
        self.part_workers = part_workers
        self.part_size_mib = part_size_mib
        self.max_buffer_mib = max_buffer_mib

    def execute(self, context: Any) -> dict[str, Any]:
        settle_heap()
        with fail_fast():
            return self._copy(context)

    def _copy(self, context: Any) -> dict[str, Any]:
        pool = self.object_workers + self.part_workers + 4
        source, dest = _side(self.source_conn_id, "input", pool), _side(self.dest_conn_id, "output", pool)
        options = MirrorOptions(
            scope=self.shard.get("scope", ""),
            key_range=KeyRange.from_dict(self.shard.get("key_range")),
            remove_extraneous=self.shard.get("remove_extraneous") is True,
            max_delete=int(self.shard.get("max_delete", 1000)),
            object_workers=self.object_workers,
            part_workers=self.part_workers,
            part_size=self.part_size_mib * MIB,
            max_buffer_bytes=self.max_buffer_mib * MIB,
        )
        self.lineage(
            inputs=[scope_dataset(source, options.scope)], outputs=[scope_dataset(dest, options.scope)]
        )
        result = Mirror(source, dest, options).run()
        self.log.info("Scope %r: %s", options.scope or "all", result.summary_line())
        self.log.info("%s", result.counts_line())
        context["ti"].xcom_push(key=SHARD_RESULT_KEY, value={**result.to_dict(), "scope": options.scope})
        if result.failed:
            raise TransferError(f"{result.failed} object(s) failed: " + "; ".join(result.failures[:10]))
        return result.to_dict()


class S3MirrorSummaryOperator(LineageMixin, BaseOperator):
    """Combine the shards' results: log the seed's summary line and the counts, push them to the
    Pushgateway, return them (XCom). Fails if a shard failed or reported nothing.
    Lineage: none (it reads XComs and pushes metrics; no dataset moves)."""

    template_fields: Sequence[str] = ("copy_task_id", "plan_task_id", "pushgateway_conn_id", "job")
    ui_color = "#d7f0e6"

    def __init__(
        self,
        *,
        copy_task_id: str = "copy",
        plan_task_id: str = "plan",
        pushgateway_conn_id: str = "pushgateway_default",
        job: str = "egress_sync",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.copy_task_id = copy_task_id
        self.plan_task_id = plan_task_id
        self.pushgateway_conn_id = pushgateway_conn_id
        self.job = job

    def execute(self, context: Any) -> dict[str, Any]:
        # No map_indexes: the task SDK returns the values of every map index (one value if only one).
        pulled = context["ti"].xcom_pull(task_ids=self.copy_task_id, key=SHARD_RESULT_KEY)
        if isinstance(pulled, dict):
            pulled = [pulled]
        pulled = [r for r in (pulled or []) if r]
        shard_results = [MirrorResult.from_dict(r) for r in pulled]
        by_scope: dict[str, list[MirrorResult]] = {}
        for raw, shard in zip(pulled, shard_results, strict=True):
            by_scope.setdefault(str(raw.get("scope", "")), []).append(shard)
        scopes = {}
        for scope, parts in sorted(by_scope.items()):
            day = MirrorResult.combine(parts)
            scopes[scope or "all"] = {"summary": day.summary_line(), **day.to_dict()}
            self.log.info("Scope %r: %s; %s", scope or "all", day.summary_line(), day.counts_line())
        result = MirrorResult.combine(shard_results)
        self.log.info("%s", result.summary_line())
        self.log.info("%s", result.counts_line())
        try:
            PushgatewayHook(self.pushgateway_conn_id).push(
                summary_registry(result, self.job),
                job=self.job,
                grouping_key={"dag_id": context["dag"].dag_id},
            )
        except OSError as exc:  # the mirror is done; a metrics outage must not undo that
            self.log.warning("Could not push metrics to %r: %s", self.pushgateway_conn_id, exc)
        summary = {
            **result.to_dict(),
            "summary": result.summary_line(),
            "shards": len(shard_results),
            "scopes": scopes,
        }
        # The summary only reports: its inputs are final once the copies (which retry themselves) are
        # done, so a failure here fails at once instead of retrying to the same verdict.
        planned = context["ti"].xcom_pull(task_ids=self.plan_task_id)
        if planned is None:
            raise AirflowFailException(
                f"Task {self.plan_task_id!r} failed, nothing was mirrored: see its log"
            )
        if result.failed:
            raise AirflowFailException(
                f"{result.failed} object(s) failed: " + "; ".join(result.failures[:10])
            )
        if len(shard_results) < len(planned):
            raise AirflowFailException(
                f"{len(planned) - len(shard_results)} of {len(planned)} copy shard(s) reported no result "
                "(they failed before finishing); see their logs"
            )
        return summary
