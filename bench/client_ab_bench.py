"""A/B of the S3 client library on the engines' two data-path shapes, same endpoints, same run:

  A  boto3 from ObjectStoreHook (payload signing off, checksums "when_required", the hook's tuning)
  B  obstore (Rust object_store), built from the same Airflow connection: endpoint, region and the
     hook's refreshable credentials (hook.get_credentials()), as a credential provider

Shapes (what egress_sync (a) and ark_offload/egress_dump do per request):
  small  N x 256 KiB: GET from AWS S3 (a private moto) with If-Match + PUT to Ceph RGW with the
         content type and user metadata, 32 in flight (the mirror's small-object path)
  large  one 256 MiB object PUT to Ceph as a multipart upload of 8 MiB parts, 16 in flight
Prints wall seconds and the CPU seconds of the client and of each service process, best of rounds.
Integrity as the engines need it: boto3 sends Content-MD5 (the service checks it on arrival); obstore
cannot send Content-MD5, so its PUT's ETag is compared with the MD5 afterwards.

    python bench/client_ab_bench.py [--objects 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench_tools import (
    CpuMeter,
    PrivateMoto,
    ceph_pids,
    cpu_text,
    derive_connection,
    empty_bucket,
    ensure_bucket,
    load_env,
    machine_line,
    services,
)

KIB = 1024
MIB = 1024 * KIB
SRC_BUCKET = "ab-src"
DST_BUCKET = f"ab-dst-{uuid.uuid4().hex[:8]}"


def hook(conn_id: str) -> Any:
    from datamover.hooks.s3 import ObjectStoreHook

    return ObjectStoreHook(conn_id)


def obstore_store(conn_id: str, bucket: str) -> Any:
    """An obstore S3Store from the Airflow connection, credentials from the hook (refreshed by botocore)."""
    from obstore.store import S3Store

    h = hook(conn_id)
    credentials = h.get_session().get_credentials()  # botocore (Refreshable)Credentials: role_arn works

    def provide() -> dict[str, Any]:
        frozen = credentials.get_frozen_credentials()
        out: dict[str, Any] = {
            "access_key_id": frozen.access_key,
            "secret_access_key": frozen.secret_key,
            "expires_at": None,
        }
        if frozen.token:
            out["token"] = frozen.token
        return out

    endpoint = h.endpoint_url
    return S3Store(
        bucket,
        endpoint=endpoint,
        region=h.conn_config.region_name or "us-east-1",
        virtual_hosted_style_request=False,
        credential_provider=provide,
        client_options={
            "allow_http": bool(endpoint and endpoint.startswith("http://")),
            "pool_max_idle_per_host": "64",
        },
    )


def small_boto3(keys: list[str], etags: dict[str, str]) -> None:
    src, dst = hook("ab_src").client(pool=48), hook("ab_dst").client(pool=48)

    def one(key: str) -> None:
        resp = src.get_object(Bucket=SRC_BUCKET, Key=key, IfMatch=f'"{etags[key]}"')
        data = resp["Body"].read()
        put = dst.put_object(
            Bucket=DST_BUCKET,
            Key=key,
            Body=data,
            ContentMD5=base64.b64encode(bytes.fromhex(etags[key])).decode(),
            Metadata={**resp.get("Metadata", {}), "datamover-source-etag": etags[key]},
            ContentType=resp.get("ContentType", "application/octet-stream"),
        )
        assert put["ETag"].strip('"') == etags[key]

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(one, keys))


def small_obstore(keys: list[str], etags: dict[str, str]) -> None:
    import obstore

    src, dst = obstore_store("ab_src", SRC_BUCKET), obstore_store("ab_dst", DST_BUCKET)

    async def one(key: str, sem: asyncio.Semaphore) -> None:
        async with sem:
            resp = await obstore.get_async(src, key, options={"if_match": f'"{etags[key]}"'})
            data = await resp.bytes_async()
            attributes = {**resp.attributes, "datamover-source-etag": etags[key]}
            put = await obstore.put_async(dst, key, bytes(data), attributes=attributes)
            if (put["e_tag"] or "").strip('"') != etags[key]:  # no Content-MD5: check afterwards
                raise RuntimeError(f"{key}: ETag {put['e_tag']} != {etags[key]}")

    async def run() -> None:
        sem = asyncio.Semaphore(32)
        await asyncio.gather(*(one(k, sem) for k in keys))

    asyncio.run(run())


def large_boto3(data: bytes, key: str) -> None:
    c = hook("ab_dst").client(pool=24)
    upload = c.create_multipart_upload(Bucket=DST_BUCKET, Key=key)["UploadId"]

    def part(i: int) -> dict[str, Any]:
        body = data[i * 8 * MIB : (i + 1) * 8 * MIB]
        md5 = hashlib.md5(body).digest()
        r = c.upload_part(
            Bucket=DST_BUCKET,
            Key=key,
            UploadId=upload,
            PartNumber=i + 1,
            Body=body,
            ContentMD5=base64.b64encode(md5).decode(),
        )
        return {"PartNumber": i + 1, "ETag": r["ETag"]}

    with ThreadPoolExecutor(16) as pool:
        parts = list(pool.map(part, range(len(data) // (8 * MIB))))
    c.complete_multipart_upload(Bucket=DST_BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})


def large_obstore(data: bytes, key: str) -> None:
    import obstore

    store = obstore_store("ab_dst", DST_BUCKET)
    obstore.put(store, key, memoryview(data), use_multipart=True, chunk_size=8 * MIB, max_concurrency=16)


def measure(shape: str, lib: str, round_no: int, fn: Any, pids: dict[str, int]) -> tuple[float, float, dict]:
    meter = CpuMeter(pids).start()
    cpu = time.process_time()
    started = time.perf_counter()
    fn()
    res = time.perf_counter() - started, time.process_time() - cpu, meter.stop()
    print(
        f"  {shape} round {round_no}: {lib:<8} {res[0]:6.2f} s  CPU s: client {res[1]:.2f}, "
        f"{cpu_text(res[2])}  [load {os.getloadavg()[0]:.2f}]",
        flush=True,
    )
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--shapes", default="small,large")
    args = parser.parse_args()
    load_env()
    import airflow.sdk.execution_time.supervisor  # noqa: F401

    derive_connection("ab_dst", "egress_output")
    results: dict[tuple[str, str], tuple[float, float, dict[str, float]]] = {}
    print(machine_line(), flush=True)
    with PrivateMoto(conn_id="ab_src", from_conn="egress_input") as moto:
        src, dst = hook("ab_src").client(pool=48), hook("ab_dst").client(pool=48)
        ensure_bucket(src, SRC_BUCKET)
        ensure_bucket(dst, DST_BUCKET)
        pids = {"moto": moto.pid, **ceph_pids()}
        try:
            if "small" in args.shapes:
                blob = os.urandom(256 * KIB)
                keys = [f"small/obj-{i:06d}" for i in range(args.objects)]
                etags = {}
                for i, k in enumerate(keys):
                    body = i.to_bytes(8, "big") + blob[8:]
                    src.put_object(
                        Bucket=SRC_BUCKET, Key=k, Body=body, ContentType="application/octet-stream"
                    )
                    etags[k] = hashlib.md5(body).hexdigest()
                for r in range(args.rounds):
                    for lib, fn in (("boto3", small_boto3), ("obstore", small_obstore))[
                        :: 1 if r % 2 == 0 else -1
                    ]:
                        empty_bucket(dst, DST_BUCKET, "small/")
                        services("ceph-gc")
                        res = measure("small", lib, r + 1, lambda fn=fn: fn(keys, etags), pids)
                        if ("small", lib) not in results or res[0] < results["small", lib][0]:
                            results["small", lib] = res
            if "large" in args.shapes:
                data = os.urandom(256 * MIB)
                for r in range(args.rounds):
                    for lib, fn in (("boto3", large_boto3), ("obstore", large_obstore))[
                        :: 1 if r % 2 == 0 else -1
                    ]:
                        empty_bucket(dst, DST_BUCKET, "large/")
                        services("ceph-gc")
                        res = measure("large", lib, r + 1, lambda fn=fn: fn(data, "large/obj"), pids)
                        if ("large", lib) not in results or res[0] < results["large", lib][0]:
                            results["large", lib] = res
        finally:
            empty_bucket(dst, DST_BUCKET)
            dst.delete_bucket(Bucket=DST_BUCKET)
            services("ceph-gc")
    print(f"\nclient A/B (best of {args.rounds}; {machine_line()}):")
    for (shape, lib), (wall, cpu, svc) in sorted(results.items()):
        print(f"  {shape:<6} {lib:<8} {wall:6.2f} s  client CPU {cpu:5.2f} s  {cpu_text(svc)}")


if __name__ == "__main__":
    main()
