"""The virtual iOS device: a device-side protocol server the unchanged pymobiledevice3 client talks to.

One asyncio process serves any number of devices as usbmuxd (TCP ``host:port`` or a Unix
socket, what ``USBMUXD_SOCKET_ADDRESS`` names). Behind it, per device: lockdownd (values,
pairing, sessions with optional TLS, StartService), AFC, house_arrest, installation_proxy,
diagnostics_relay and, from ``dvt.py``, DVT process control. Launching the harness app
(``device.HARNESS_BUNDLE_ID``) runs the simulated harness, whose numbers come from the
performance model in ``perf_model.yaml`` and are always marked ``simulated``.

Where things are:
  server.py      VirtualFleetServer: devices, plug/unplug, faults, service ports
  usbmuxd.py     the usbmux plist protocol of one client connection
  lockdown.py    lockdownd
  services/      the StartService registry (the DVT seam) and the built-in services
  device.py      VirtualDevice: state and the process API dvt.py uses
  vfs.py         the in-memory file trees (media, app containers)
  harness.py     the simulated harness; perf_model.py(+.yaml) its numbers
  faults.py      fault kinds, FaultSet, seeded Chaos
  fleet.py       the fleet YAML (FleetSpec) and build_server
  control.py     the JSON-lines control socket and its client
  testing.py     running_fleet(): a fleet in a background thread for tests
  __main__.py    python -m agents.virtual serve | ctl
"""
