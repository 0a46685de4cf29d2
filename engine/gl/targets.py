"""Where the renderer draws: an offscreen EGL context (tests, offline render) or a glfw window.

Both targets give the renderer a moderngl context; the window target also has a screen
framebuffer to present on. The offscreen target is the test seam, like moderngl-window's
headless backend.
"""

from __future__ import annotations

import ctypes
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import moderngl

from lyriscope.errors import DeviceError

log = logging.getLogger(__name__)

GL_VERSION = 330  # the shaders are GLSL 3.30 core
INSTALL_HINT = (
    "install Mesa's EGL and software GL (Debian/Ubuntu: apt-get install libegl1 libegl-mesa0 "
    "libgl1-mesa-dri) or a GPU driver"
)


class GLTarget(ABC):
    """A GL context to render into, and maybe a screen to show the result on."""

    ctx: moderngl.Context

    @property
    def screen(self) -> moderngl.Framebuffer | None:
        """The window's framebuffer, or None offscreen."""
        return None

    @property
    def should_close(self) -> bool:
        """True once the user closed the window (never offscreen)."""
        return False

    def swap(self) -> None:  # noqa: B027 - offscreen has nothing to swap
        """Show what was drawn on `screen` and handle window events."""

    def toggle_fullscreen(self) -> None:  # noqa: B027 - offscreen has no window
        """Fullscreen on the primary monitor, or back to the window it was."""

    def listen_keys(self, names: Sequence[str], on_key: Callable[[str], None]) -> None:  # noqa: B027
        """Call on_key(name) for each press of a key in names ("space", "left", "f", "1", ...)."""

    @abstractmethod
    def close(self) -> None:
        """Release the context (and the window)."""


class OffscreenTarget(GLTarget):
    """A standalone context without a window: EGL (works headless), else the platform default."""

    def __init__(self) -> None:
        problems = []
        for backend in ("egl", None):
            try:
                kwargs = {"backend": backend} if backend else {}
                self.ctx = moderngl.create_standalone_context(require=GL_VERSION, **kwargs)
                self._backend = backend
                break
            except Exception as exc:  # noqa: BLE001 - glcontext raises plain Exceptions
                problems.append(f"{backend or 'default'}: {exc}")
        else:
            raise DeviceError(
                f"no OpenGL {GL_VERSION // 100}.{GL_VERSION % 100 // 10} context could be "
                f"created offscreen ({'; '.join(problems)}); {INSTALL_HINT}"
            )
        log.debug("offscreen GL: %s", self.ctx.info.get("GL_RENDERER"))

    def close(self) -> None:
        self.ctx.release()
        if self._backend == "egl":
            _release_egl_thread()


def _glfw_text(message: Warning | str) -> str:
    # glfw's warnings read "(65550) b'X11: The DISPLAY environment variable is missing'".
    text = str(message)
    start, end = text.find("b'"), text.rfind("'")
    return text[start + 2 : end] if 0 <= start < end else text


def _release_egl_thread() -> None:
    # glcontext leaves its EGL context current; glvnd then refuses a GLX context (a glfw
    # window) on this thread with BadAccess. eglReleaseThread makes nothing current.
    try:
        egl = ctypes.CDLL("libEGL.so.1")
    except OSError:
        return
    egl.eglReleaseThread()


class WindowTarget(GLTarget):
    """A glfw window, optionally fullscreen on monitor `monitor` (0 = primary)."""

    def __init__(
        self,
        size: tuple[int, int],  # window size in screen coordinates (width, height)
        *,
        title: str = "lyriscope",
        fullscreen: bool = False,
        monitor: int = 0,  # index into the connected monitors, used when fullscreen
        vsync: bool = True,  # wait for the display's refresh on swap
    ) -> None:
        # Imported here: importing glfw picks the X11 or Wayland library from the environment
        # and loads it (probing its version in a subprocess); offscreen renders need none of it.
        import glfw

        with warnings.catch_warnings(record=True) as caught:  # glfw warns, then returns False
            warnings.simplefilter("always")
            started = glfw.init()
        if not started:
            why = "; ".join(_glfw_text(w.message) for w in caught) or "glfw could not start"
            raise DeviceError(
                f"no display for a window ({why}); run on a desktop, under `xvfb-run`, or "
                f"render offscreen with `lyriscope render`"
            )
        self._glfw = glfw
        self._windowed = (50, 50, *size)  # x, y, width, height to return to from fullscreen
        glfw_monitor = None
        if fullscreen:
            monitors = glfw.get_monitors() or []
            if not 0 <= monitor < len(monitors):
                glfw.terminate()
                raise DeviceError(
                    f"monitor {monitor} not found; {len(monitors)} connected "
                    f"(use 0..{max(len(monitors) - 1, 0)})"
                )
            glfw_monitor = monitors[monitor]
            mode = glfw.get_video_mode(glfw_monitor)
            size = (mode.size.width, mode.size.height)
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        self.window = glfw.create_window(size[0], size[1], title, glfw_monitor, None)
        if not self.window:
            glfw.terminate()
            raise DeviceError(
                f"could not open a {size[0]}x{size[1]} OpenGL 3.3 window; {INSTALL_HINT}"
            )
        glfw.make_context_current(self.window)
        glfw.swap_interval(1 if vsync else 0)
        try:
            self.ctx = moderngl.create_context(require=GL_VERSION)
        except Exception as exc:  # noqa: BLE001
            glfw.destroy_window(self.window)
            glfw.terminate()
            raise DeviceError(
                f"the window has no usable OpenGL 3.3 context ({exc}); {INSTALL_HINT}"
            ) from None

    @property
    def screen(self) -> moderngl.Framebuffer:
        # The default framebuffer follows the window's current size (resizes, HiDPI).
        width, height = self._glfw.get_framebuffer_size(self.window)
        screen = self.ctx.screen  # framebuffer 0, not whichever one is bound now
        screen.viewport = (0, 0, width, height)
        return screen

    @property
    def should_close(self) -> bool:
        return bool(self._glfw.window_should_close(self.window))

    def swap(self) -> None:
        self._glfw.swap_buffers(self.window)
        self._glfw.poll_events()

    def toggle_fullscreen(self) -> None:
        """Fullscreen on the primary monitor, or back to the window it was; DeviceError without one."""
        glfw, window = self._glfw, self.window
        if glfw.get_window_monitor(window):
            glfw.set_window_monitor(window, None, *self._windowed, 0)
            return
        monitor = glfw.get_primary_monitor()
        if not monitor:
            raise DeviceError("no monitor for fullscreen")
        self._windowed = (*glfw.get_window_pos(window), *glfw.get_window_size(window))
        mode = glfw.get_video_mode(monitor)
        glfw.set_window_monitor(
            window, monitor, 0, 0, mode.size.width, mode.size.height, mode.refresh_rate
        )

    def listen_keys(self, names: Sequence[str], on_key: Callable[[str], None]) -> None:
        """Call on_key(name) for each press of a key in names; a digit on the keypad counts too."""
        glfw = self._glfw
        by_code: dict[int, str] = {}
        for name in names:
            by_code[getattr(glfw, f"KEY_{name.upper()}")] = name
            if name.isdigit():
                by_code[getattr(glfw, f"KEY_KP_{name}")] = name

        def callback(_window: Any, key: int, _scancode: int, action: int, _mods: int) -> None:
            if action == glfw.PRESS and key in by_code:
                on_key(by_code[key])

        glfw.set_key_callback(self.window, callback)

    def close(self) -> None:
        self.ctx.release()
        self._glfw.destroy_window(self.window)
        self._glfw.terminate()


@dataclass(frozen=True)
class Monitor:
    """A screen `lyriscope live --fullscreen --monitor INDEX` can fill."""

    index: int  # what --monitor takes; 0 is the primary
    name: str
    width: int  # current video mode, pixels
    height: int
    refresh_hz: int


def list_monitors() -> list[Monitor]:
    """The screens glfw sees; DeviceError when there is no display to ask."""
    # Imported here: importing glfw picks the X11 or Wayland library from the environment.
    import glfw

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = glfw.init()
    if not started:
        why = "; ".join(_glfw_text(w.message) for w in caught) or "glfw could not start"
        raise DeviceError(f"no display to list monitors from ({why})")
    try:
        monitors = []
        for i, handle in enumerate(glfw.get_monitors() or []):
            mode = glfw.get_video_mode(handle)
            name = glfw.get_monitor_name(handle)
            monitors.append(
                Monitor(
                    index=i,
                    name=name.decode(errors="replace") if isinstance(name, bytes) else str(name),
                    width=mode.size.width,
                    height=mode.size.height,
                    refresh_hz=mode.refresh_rate,
                )
            )
        return monitors
    finally:
        glfw.terminate()
