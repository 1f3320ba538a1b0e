"""aiobotocore clients for triggers: created without blocking the event loop, and shared per loop.

Creating an aiobotocore client parses the service's botocore model (SageMaker's is over 1 MB of JSON) inside
``__aenter__``, on the event loop: 0.15-0.2 s on an idle machine and more under load, each time, for every
trigger. Here the parsing happens in a worker thread (the session's loader caches it), the client is entered on
the loop (~15 ms), and one client per (service, connection, region) is reused by every trigger of the loop.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

_ClientKey = tuple[str, str | None, str | None]
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_ClientKey, Any]] = (
    weakref.WeakKeyDictionary()
)
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_ClientKey, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _prepared_client_context(hook: AwsBaseHook) -> Any:
    """Runs in a worker thread: reads the connection, loads the models, returns the client's context."""
    service = str(hook.client_type)
    # With deferrable=True the amazon hook returns an aiobotocore session (typed as a boto3 one).
    session: Any = hook.get_session(region_name=hook.region_name, deferrable=True)
    loader = session.get_component("data_loader")
    loader.load_service_model(service, "service-2")
    loader.load_service_model(service, "endpoint-rule-set-1")
    for name in ("endpoints", "partitions", "sdk-default-configuration"):
        loader.load_data(name)
    return session.create_client(
        service_name=service,
        endpoint_url=hook.conn_config.get_service_endpoint_url(service_name=service),
        config=hook._get_config(None),
        verify=hook.verify,
    )


async def shared_async_client(hook: AwsBaseHook) -> Any:
    """The loop's client for the hook's service, connection and region (created on first use, never closed
    before the loop ends: triggers come and go, the client stays warm)."""
    loop = asyncio.get_running_loop()
    # The region given to the hook, not the resolved one: resolving reads the connection (blocking).
    key: _ClientKey = (str(hook.client_type), hook.aws_conn_id, hook._region_name)
    clients = _clients.setdefault(loop, {})
    lock = _locks.setdefault(loop, {}).setdefault(key, asyncio.Lock())
    async with lock:
        client = clients.get(key)
        if client is None:
            context = await asyncio.to_thread(_prepared_client_context, hook)
            client = await context.__aenter__()
            clients[key] = client
    return client
