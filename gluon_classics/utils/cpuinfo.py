"""The first CPU's fields in ``/proc/cpuinfo``, read without MXNet (``amx.py`` reads them
before MXNet loads; ``devices.cpu_info`` and ``cpu_vendor`` after)."""

__all__ = ['first_cpu']


def first_cpu(cpuinfo='/proc/cpuinfo'):
    """The first processor's fields (``vendor_id``, ``model name``, ``flags``...) as a dict of
    strings; empty where the file cannot be read."""
    fields = {}
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, colon, value = line.partition(':')
                if not colon and fields:  # the blank line after the first processor
                    break
                if colon:
                    fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields
