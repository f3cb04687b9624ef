"""What the CUDA side of this process holds, read without running a kernel.

Everything here is standard library only (``_backend`` uses it before MXNet is
imported) and cheap: a few ELF headers, the driver's device attributes, the
versions of libraries already loaded.

``python gluon_classics/utils/cuda.py path/to/libmxnet.so [--wheels DIR]``
lists the kernel images a build carries, as ``cuobjdump --list-elf --list-ptx``
would, and which wheel provides each library it needs (no GPU, no MXNet needed).
"""
import collections
import ctypes
import glob
import importlib.util
import os
import struct

__all__ = ['needed_libraries', 'kernel_images', 'runs_on', 'gpus', 'driver_version',
           'loaded_libraries', 'nvidia_wheel_libraries', 'preload', 'wheel_libraries',
           'sorted_targets']

_FATBIN_MAGIC = 0xBA55ED50
_DT_NEEDED = 1


def _sections(f):
    """``{name: (offset, size)}`` of a 64-bit little-endian ELF file's sections."""
    head = f.read(64)
    if head[:4] != b'\x7fELF' or head[4] != 2 or head[5] != 1:
        raise ValueError(f'{f.name} is not a 64-bit little-endian ELF file')
    shoff, = struct.unpack_from('<Q', head, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', head, 0x3A)
    f.seek(shoff)
    table = f.read(shentsize * shnum)
    rows = [struct.unpack_from('<IIQQQQ', table, k * shentsize) for k in range(shnum)]
    f.seek(rows[shstrndx][4])
    names = f.read(rows[shstrndx][5])
    return {names[r[0]:names.index(b'\0', r[0])].decode(): (r[4], r[5]) for r in rows}


def _read(f, offset, size):
    f.seek(offset)
    return f.read(size)


def needed_libraries(path):
    """The sonames a shared library asks the loader for (its ``DT_NEEDED`` entries)."""
    with open(path, 'rb') as f:
        sections = _sections(f)
        if '.dynamic' not in sections:
            return []
        dynamic = _read(f, *sections['.dynamic'])
        strings = _read(f, *sections['.dynstr'])
    needed = []
    for tag, value in struct.iter_unpack('<qQ', dynamic):
        if tag == 0:
            break
        if tag == _DT_NEEDED:
            needed.append(strings[value:strings.index(b'\0', value)].decode())
    return needed


def kernel_images(path):
    """Count the CUDA kernel images in a library's ``.nv_fatbin`` section.

    Each fatbinary holds one image per target: a cubin (``sm_86``: machine code
    for that architecture) or PTX (``compute_86``: code the driver can compile
    for that architecture and newer ones).

    Returns
    -------
    (int, collections.Counter)
        The number of fatbinaries and ``{target: images}``; ``(0, {})`` for a
        library without CUDA code, such as the CPU build of MXNet.
    """
    images = collections.Counter()
    fatbins = 0
    with open(path, 'rb') as f:
        start, size = _sections(f).get('.nv_fatbin', (0, 0))
        pos, end = start, start + size
        while pos + 16 <= end:
            magic, _, header, length = struct.unpack('<IHHQ', _read(f, pos, 16))
            if magic != _FATBIN_MAGIC:  # padding between fatbinaries
                pos += 8
                continue
            fatbins += 1
            entry, last = pos + header, pos + header + length
            while entry < last:
                kind, _, entry_header, payload = struct.unpack('<HHIQ', _read(f, entry, 16))
                arch, = struct.unpack('<I', _read(f, entry + 28, 4))
                images[('compute_' if kind == 1 else 'sm_') + str(arch)] += 1
                entry += entry_header + payload
            pos = last
    return fatbins, images


def sorted_targets(targets):
    """Targets by architecture, cubin before PTX: sm_50, ..., sm_86, compute_86."""
    return sorted(targets, key=lambda t: (int(t.partition('_')[2]), t.startswith('compute')))


def runs_on(targets, capability):
    """Whether kernel images for ``targets`` can run on a GPU of this compute capability.

    A cubin runs on its own major architecture at the same or a later minor
    version (sm_86 code on an sm_89 GPU); PTX is compiled by the driver for its
    own architecture and any later one.
    """
    major, minor = capability
    for target in targets:
        kind, _, arch = target.partition('_')
        t_major, t_minor = divmod(int(arch), 10)
        if kind == 'sm' and t_major == major and t_minor <= minor:
            return True
        if kind == 'compute' and (t_major, t_minor) <= (major, minor):
            return True
    return False


def _driver():
    """The CUDA driver library, initialized, or None (no driver, or no GPU)."""
    try:
        cuda = ctypes.CDLL('libcuda.so.1')
    except OSError:
        return None
    return cuda if cuda.cuInit(0) == 0 else None


def driver_version():
    """The CUDA version the driver supports, e.g. ``(12, 4)``, or None without a driver."""
    cuda = _driver()
    version = ctypes.c_int()
    if cuda is None or cuda.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return None
    return divmod(version.value // 10, 100)


def gpus():
    """The GPUs the driver shows this process (``CUDA_VISIBLE_DEVICES`` applies).

    Returns
    -------
    list of dict
        ``index``, ``name``, ``capability`` (major, minor) and ``memory`` (bytes)
        per GPU, in MXNet's device order; empty without a driver or a GPU. The
        driver API answers without creating a context on the device.
    """
    cuda = _driver()
    count = ctypes.c_int()
    if cuda is None or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return []
    found = []
    for i in range(count.value):
        device, name = ctypes.c_int(), ctypes.create_string_buffer(256)
        major, minor, memory = ctypes.c_int(), ctypes.c_int(), ctypes.c_size_t()
        cuda.cuDeviceGet(ctypes.byref(device), i)
        cuda.cuDeviceGetName(name, 256, device)
        cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, device)  # ..._CAPABILITY_MAJOR
        cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, device)  # ..._CAPABILITY_MINOR
        cuda.cuDeviceTotalMem_v2(ctypes.byref(memory), device)
        found.append(dict(index=i, name=name.value.decode(errors='replace'),
                          capability=(major.value, minor.value), memory=memory.value))
    return found


def _version(name, path):
    """One loaded library's version, from its own version function ('unknown' if it fails)."""
    lib = ctypes.CDLL(path)  # already loaded: this returns the same handle
    if name == 'cudnn':
        lib.cudnnGetVersion.restype = ctypes.c_size_t
        v = lib.cudnnGetVersion()  # 8906: 8.9.6
        return f'{v // 1000}.{v % 1000 // 100}.{v % 100}'
    out = ctypes.c_int()
    getter = lib.cudaRuntimeGetVersion if name == 'cudart' else lib.ncclGetVersion
    if getter(ctypes.byref(out)) != 0:
        return 'unknown'
    v = out.value
    if name == 'cudart':  # 11080: 11.8
        return f'{v // 1000}.{v % 1000 // 10}'
    return f'{v // 10000}.{v % 10000 // 100}.{v % 100}'  # NCCL >= 2.9: 22105 is 2.21.5


_LIBRARIES = {'cudart': 'libcudart.so', 'cudnn': 'libcudnn.so', 'nccl': 'libnccl.so'}


def loaded_libraries():
    """``{name: (version, path)}`` of the CUDA runtime, cuDNN and NCCL this process has loaded.

    Only libraries already mapped (by ``libmxnet.so`` of a CUDA build) are
    reported, so this never loads anything; the CPU build gives ``{}``.
    """
    try:
        with open('/proc/self/maps') as f:
            paths = {row[5].strip() for row in (line.split(None, 5) for line in f)
                     if len(row) == 6}
    except OSError:
        return {}
    found = {}
    for name, prefix in _LIBRARIES.items():
        for path in sorted(paths):
            if os.path.basename(path).startswith(prefix + '.'):
                found[name] = (_version(name, path), path)
                break
    return found


def nvidia_wheel_libraries():
    """``{soname: path}`` of the shared libraries NVIDIA's ``nvidia-*`` wheels installed."""
    try:
        spec = importlib.util.find_spec('nvidia')
    except (ImportError, ValueError):
        return {}
    found = {}
    for root in (spec.submodule_search_locations or []) if spec else []:
        for path in sorted(glob.glob(os.path.join(root, '*', 'lib', 'lib*.so*'))):
            found.setdefault(os.path.basename(path), path)
    return found


def preload(library):
    """Load the CUDA libraries ``library`` needs from the ``nvidia-*`` wheels, globally.

    The wheels put each library in its own ``site-packages/nvidia/*/lib``,
    where the loader does not look; once a soname is loaded with
    ``RTLD_GLOBAL``, ``library``'s own dlopen finds it (PyTorch does the same).
    Their own dependencies resolve through the wheels' ``$ORIGIN`` RPATHs.

    Returns
    -------
    list of str
        The paths loaded; empty when the wheels provide none of them.
    """
    wheels = nvidia_wheel_libraries()
    loaded = []
    for soname in needed_libraries(library):
        if soname in wheels:
            ctypes.CDLL(wheels[soname], mode=ctypes.RTLD_GLOBAL)
            loaded.append(wheels[soname])
    return loaded


def wheel_libraries(folder):
    """``{soname: wheel}`` of the shared libraries in the wheels in ``folder``, not unpacked."""
    import zipfile
    found = {}
    for wheel in sorted(glob.glob(os.path.join(folder, '*.whl'))):
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if '/lib' in name and '.so' in os.path.basename(name):
                    found.setdefault(os.path.basename(name), os.path.basename(wheel))
    return found


def _main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(
        prog='python gluon_classics/utils/cuda.py',
        description="List the CUDA kernel images in a library's fatbinaries "
                    "(e.g. mxnet/libmxnet.so unzipped from a mxnet-cu112 wheel), "
                    "and with --wheels which wheel provides each library it needs.")
    parser.add_argument('library')
    parser.add_argument('--wheels', metavar='DIR',
                        help='a folder of wheels (pip download --no-deps -d DIR ...)')
    args = parser.parse_args(argv)
    fatbins, images = kernel_images(args.library)
    print(f'{args.library}: {fatbins} fatbinaries')
    for target in sorted_targets(images):
        kind = 'PTX' if target.startswith('compute_') else 'cubin'
        print(f'{target}: {images[target]} {kind} images')
    if fatbins and not any(t.startswith('compute_') for t in images):
        print('no PTX: GPUs newer than the last cubin architecture cannot run these kernels')
    if args.wheels:
        provided = wheel_libraries(args.wheels)
        for soname in needed_libraries(args.library):
            print(f"needs {soname}: {provided.get(soname, 'not in these wheels')}")


if __name__ == '__main__':
    _main()
