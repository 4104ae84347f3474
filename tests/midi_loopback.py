"""An in-process loopback MIDI backend for mido, for tests.

Whatever is sent on output port ``"loop"`` arrives on every open input port
``"loop"``: at once through the input's callback if it has one, otherwise in
its queue for ``receive()``/``iter_pending()``.  Use it as a mido backend,
``mido.Backend("midi_loopback")`` (the module implements ``get_devices``,
``Input`` and ``Output``, which is what ``mido.Backend`` calls), or pass the
module itself where a backend object is expected: it also has mido's
``get_input_names``/``get_output_names``/``open_input``/``open_output``.

``set_port_names`` chooses which ports exist (``[]`` for none); ``reset``
restores ``["loop"]`` and forgets open ports.
"""

from __future__ import annotations

import threading

from mido.ports import BaseInput, BaseOutput

_lock = threading.RLock()
_names: list[str] = ["loop"]
_inputs: list[Input] = []


def set_port_names(names) -> None:
    """Make exactly ``names`` exist as loopback ports."""
    with _lock:
        _names[:] = list(names)


def reset() -> None:
    """Back to the single port ``"loop"``, with no open inputs."""
    with _lock:
        _names[:] = ["loop"]
        _inputs.clear()


def _resolve(name):
    with _lock:
        if name is None:
            if not _names:
                raise OSError("no loopback ports")
            return _names[0]
        if name not in _names:
            raise OSError(f"unknown loopback port {name!r}")
        return name


# -- the mido backend module API -------------------------------------------------
def get_devices(**kwargs):
    with _lock:
        return [{"name": n, "is_input": True, "is_output": True} for n in _names]


class Input(BaseInput):
    _device_type = "loopback"

    def _open(self, virtual=False, callback=None, **kwargs):
        if virtual:
            with _lock:
                if self.name not in _names:
                    _names.append(self.name)
        self.name = _resolve(self.name)
        self.callback = callback
        with _lock:
            _inputs.append(self)

    def _close(self):
        with _lock:
            if self in _inputs:
                _inputs.remove(self)

    def _deliver(self, message):
        if self.callback is not None:
            self.callback(message)
        else:
            with self._lock:
                self._messages.append(message)

    def _receive(self, block=True):
        return None  # messages are pushed straight into self._messages


class Output(BaseOutput):
    _device_type = "loopback"

    def _open(self, virtual=False, **kwargs):
        if virtual:
            with _lock:
                if self.name not in _names:
                    _names.append(self.name)
        self.name = _resolve(self.name)

    def _send(self, message):
        with _lock:
            targets = [p for p in _inputs if p.name == self.name and not p.closed]
        for port in targets:
            port._deliver(message.copy())


# -- mido's top-level API, so the module itself works as a backend object ----------
def get_input_names(**kwargs):
    return [d["name"] for d in get_devices() if d["is_input"]]


def get_output_names(**kwargs):
    return [d["name"] for d in get_devices() if d["is_output"]]


def open_input(name=None, virtual=False, callback=None, **kwargs):
    return Input(name, virtual=virtual, callback=callback, **kwargs)


def open_output(name=None, virtual=False, autoreset=False, **kwargs):
    return Output(name, virtual=virtual, autoreset=autoreset, **kwargs)
