"""Device-side DTX channels of the virtual device's instruments server (DVT), beside processcontrol.

One module per channel family, mirroring ``pymobiledevice3/services/dvt/instruments``:
``deviceinfo`` (process list, directory listing, hardware and network information),
``sysmontap`` (periodic process samples) and ``energy`` (the Xcode energy gauge). The
process table they all read is ``processes``. Every figure comes from the simulation.
"""
