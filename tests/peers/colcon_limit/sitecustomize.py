# colcon-core reads its subprocesses' output line by line through asyncio
# streams, whose default limit is 64 KiB per line; colcon-cargo parses
# `cargo metadata`, which prints this workspace's metadata (over 64 KiB) on
# one line, and gets nothing. This raises the limit for every subprocess
# colcon starts. Put this folder on PYTHONPATH when running colcon:
#   PYTHONPATH=$PWD/tests/peers/colcon_limit colcon build
import asyncio

_LIMIT = 1 << 24
_exec = asyncio.create_subprocess_exec
_shell = asyncio.create_subprocess_shell


async def _create_subprocess_exec(*args, limit=_LIMIT, **kwargs):
    return await _exec(*args, limit=limit, **kwargs)


async def _create_subprocess_shell(cmd, limit=_LIMIT, **kwargs):
    return await _shell(cmd, limit=limit, **kwargs)


asyncio.create_subprocess_exec = _create_subprocess_exec
asyncio.create_subprocess_shell = _create_subprocess_shell
