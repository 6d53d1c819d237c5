"""Persistence: what libvirt writes of a domain's jobs, where it is kept, and
what a restart and a vanished client do with it.

* ``status``: :class:`~pymigjob.persist.status.JobStatus`, the record, and
  ``status_xml``: its ``<job>`` element, read and written as libvirt 11 does;
* ``store``: where records live (``Store``, ``DirectoryStore``, ``MemoryStore``);
* ``tracker``: the driver's write-through and its clock on parked migrations;
* ``recovery``: libvirt's decision for every recorded domain after a restart,
  from ``recovery_tables`` (libvirt 11's and 0.9.4's, as data);
* ``abandon``: the close-callback rule for a migration whose client went away.

Everything here uses the drivers' and domains' public methods only, and
imports nothing of either backend.  ``pymigjob.store`` and
``pymigjob.recovery`` are these modules under the names the README and
api.md give them.
"""

from .tracker import Tracker

__all__ = ["Tracker"]
