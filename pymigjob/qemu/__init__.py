"""pymigjob on real QEMU processes (``pip install 'pymigjob[qemu]'``).

* :mod:`.process`     -- one QEMU per domain: start, adopt after a restart, kill
* :mod:`.monitor`     -- the QMP monitor, entered only under a job
* :mod:`.jobs`        -- jobs as ``async with`` blocks, and who holds them
* :mod:`.vm`          -- a domain: job domain + QEMU + monitor
* :mod:`.host`        -- the domains of one daemon; operations under their jobs
* :mod:`.migration`   -- the v3 steps on QMP, peer to peer
* :mod:`.recovery`    -- ``Driver.recover()``'s decisions carried out on QEMU
* :mod:`.reaper`      -- reaping QEMUs orphaned by a killed daemon
"""

from .host import Host
from .migration import MigrationReport, Peer, finish3, migrate, prepare3
from .monitor import Monitor, MonitorNotEntered
from .process import QemuProcess, RuntimeFiles, find_qemu
from .recovery import Recovered
from .vm import Vm, paused_reason

__all__ = ["Host", "MigrationReport", "Monitor", "MonitorNotEntered", "Peer", "QemuProcess",
           "Recovered", "RuntimeFiles", "Vm", "find_qemu", "finish3", "migrate",
           "paused_reason", "prepare3"]
