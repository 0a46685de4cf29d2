"""The GL renderer: a model image goes up as a texture and through the post chain in shaders/.

The post chain is a plain list of `Effect`s, each one fragment shader pass reading the pass
before it (`u_source`). The default chain is crossfade -> trail -> grade -> vignette -> text
-> flash; passes whose parameters make them a no-op are skipped (the text pass whenever no
words are on screen, so a frame without a lyric is the same with [post] text on or off).
The lyric is an engine.gl.lyric.Lyric: each line is set once (LyricLayers) and only lit and
faded per frame. Images of another size than the output are scaled first: bicubic and
lanczos by a separable resample pass (as PIL does), bilinear and nearest by the sampler's
filter.
All passes keep the image's top row as row 0, so `read()` needs no flip; the window's
present pass flips once. Colour maths works on the sRGB-encoded values, like the images.

Example:
    >>> with Renderer.offscreen(256, post=Post(vignette=0.5)) as r:
    ...     r.render(image_a, image_b=image_b, mix=0.25)
    ...     frame = r.read()  # uint8 [256, 256, 3]
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import moderngl
import numpy as np

from lyriscope.engine.gl.lyric import Lyric, LyricLayers, LyricLayout
from lyriscope.engine.gl.targets import GLTarget, OffscreenTarget, WindowTarget
from lyriscope.errors import LyriscopeError
from lyriscope.setmodel import Post

VERTEX_SHADER = "quad.vert.glsl"
PRESENT_SHADER = "present"  # window output
RESAMPLE_SHADER = "resample"  # bicubic / lanczos (and shrinking bilinear), before the chain
UPSCALE_FILTERS: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "lanczos")  # u_filter 0..3


class ShaderError(LyriscopeError):
    """A shader file is missing or does not compile."""


@dataclass(frozen=True)
class FrameParams:
    """Everything one frame's passes may read: the set's [post] and the per-frame values."""

    post: Post
    size: int  # output side in pixels
    mix: float = 0.0  # crossfade, 0 image A .. 1 image B
    lyric: Lyric | None = None  # the words on screen; None: none (or post.text is off)
    flash: float = 0.0  # 0 .. 1 towards white (live)
    blackout: float = 0.0  # 0 .. 1 towards black (live)


def _always(frame: FrameParams) -> bool:
    return True


def _no_uniforms(frame: FrameParams) -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True)
class Effect:
    """One pass of the post chain: shaders/<name>.frag.glsl and the uniforms it gets per frame.

    Samplers are bound by name: u_source (the previous pass), u_image_a / u_image_b (the
    uploaded images), u_previous (a feedback effect's own last output), u_text (the lyric's
    RGBA layer, straight alpha).
    """

    name: str
    uniforms: Callable[[FrameParams], Mapping[str, Any]] = _no_uniforms
    active: Callable[[FrameParams], bool] = _always  # False skips the pass this frame
    feedback: bool = False  # keeps its output for the next frame (ping-pong framebuffers)


def _crossfade_uniforms(f: FrameParams) -> Mapping[str, Any]:
    return {"u_mix": float(np.clip(f.mix, 0.0, 1.0))}


def _grade_uniforms(f: FrameParams) -> Mapping[str, Any]:
    p = f.post
    return {"u_brightness": p.brightness, "u_contrast": p.contrast, "u_saturation": p.saturation}


def _grade_active(f: FrameParams) -> bool:
    p = f.post
    return (p.brightness, p.contrast, p.saturation) != (0.0, 1.0, 1.0)


DEFAULT_CHAIN: tuple[Effect, ...] = (
    Effect("crossfade", _crossfade_uniforms),
    Effect("trail", lambda f: {"u_trail": f.post.trail}, lambda f: f.post.trail > 0, feedback=True),
    Effect("grade", _grade_uniforms, _grade_active),
    Effect("vignette", lambda f: {"u_vignette": f.post.vignette}, lambda f: f.post.vignette > 0),
    Effect("text", active=lambda f: f.post.text and f.lyric is not None),
    Effect(
        "flash",
        lambda f: {"u_flash": f.flash, "u_blackout": f.blackout},
        lambda f: f.flash > 0 or f.blackout > 0,
    ),
)


def default_shader_dir() -> Traversable:
    """The shaders shipped with lyriscope (package lyriscope.shaders)."""
    return resources.files("lyriscope.shaders")


def copy_shaders(folder: str | Path) -> Path:
    """Copy the shipped shaders into `folder` (to edit them live with `shader_dir=folder`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for item in default_shader_dir().iterdir():
        if item.name.endswith(".glsl"):
            with resources.as_file(item) as src:
                shutil.copyfile(src, folder / item.name)
    return folder


class _ShaderLibrary:
    """Compiled programs by name, rebuilt from their files on `reload()`."""

    def __init__(self, ctx: moderngl.Context, shader_dir: Traversable) -> None:
        self.ctx = ctx
        self.dir = shader_dir
        self.programs: dict[str, moderngl.Program] = {}
        self._sources: dict[str, tuple[str, str]] = {}

    def _read(self, file_name: str) -> str:
        try:
            return self.dir.joinpath(file_name).read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            raise ShaderError(f"{self.dir}/{file_name}: shader file not found") from None

    def load(self, name: str) -> None:
        """Compile shaders/<name>.frag.glsl with the shared vertex shader; raise ShaderError."""
        sources = (self._read(VERTEX_SHADER), self._read(f"{name}.frag.glsl"))
        try:
            program = self.ctx.program(vertex_shader=sources[0], fragment_shader=sources[1])
        except moderngl.Error as exc:
            message = " ".join(str(exc).split())
            raise ShaderError(f"{self.dir}/{name}.frag.glsl does not compile: {message}") from None
        old = self.programs.get(name)
        if old is not None:
            old.release()
        self.programs[name] = program
        self._sources[name] = sources

    def reload(self) -> list[str]:
        """Recompile the programs whose files changed; a broken one keeps its last good build."""
        errors = []
        for name in list(self.programs):
            try:
                sources = (self._read(VERTEX_SHADER), self._read(f"{name}.frag.glsl"))
                if sources != self._sources[name]:
                    self.load(name)
            except ShaderError as exc:
                errors.append(str(exc))
        return errors

    def release(self) -> None:
        for program in self.programs.values():
            program.release()
        self.programs.clear()


class Renderer:
    """Post chain on a GL target; `render()` a frame, then `read()` it or `present()` it."""

    def __init__(
        self,
        target: GLTarget,
        size: int,  # output side in pixels (the set's [output] size)
        *,
        post: Post | None = None,  # the set's [post] (None: defaults); render(post=) overrides
        effects: Sequence[Effect] = DEFAULT_CHAIN,  # the first one reads the images
        shader_dir: str | Path | Traversable | None = None,  # None: the shipped shaders
    ) -> None:
        self.target: GLTarget | None = target  # owned: closed with the renderer
        self.ctx = target.ctx
        self.size = size
        self.post = post = post or Post()
        self.effects = list(effects)
        self._vao: dict[str, moderngl.VertexArray] = {}
        self._images: dict[str, moderngl.Texture] = {}  # by slot ("a", "b")
        self._scratch: dict[str, moderngl.Framebuffer] = {}  # resampling targets by slot
        self._lyrics = LyricLayers(size)
        self._text_shown: tuple[LyricLayout, float, float] | None = None  # what u_text holds
        try:
            if size < 1:
                raise ValueError(f"size must be a positive number of pixels, got {size}")
            _check_upscale(post)
            folder = default_shader_dir() if shader_dir is None else _as_traversable(shader_dir)
            self._shaders = _ShaderLibrary(self.ctx, folder)
            names = [e.name for e in self.effects] + [RESAMPLE_SHADER, PRESENT_SHADER]
            for name in dict.fromkeys(names):
                self._shaders.load(name)
            # Intermediate passes in half float so a long trail fades out instead of sticking.
            self._work = [self._framebuffer("f2") for _ in range(2)]
            self._history = {
                e.name: [self._framebuffer("f2") for _ in range(2)]
                for e in self.effects
                if e.feedback
            }
            self._history_valid: dict[str, bool] = dict.fromkeys(self._history, False)
            self._output = self._framebuffer("f1")
            self._text_texture = self.ctx.texture((size, size), 4, dtype="f1")
        except BaseException:
            self.close()
            raise

    @classmethod
    def offscreen(cls, size: int, *, post: Post | None = None, **options: Any) -> Renderer:
        """A renderer without a window (EGL): for the offline render and tests."""
        return cls(OffscreenTarget(), size, post=post, **options)

    @classmethod
    def window(
        cls,
        size: int,
        *,
        post: Post | None = None,
        fullscreen: bool = False,
        monitor: int = 0,
        title: str = "lyriscope",
        vsync: bool = True,
        **options: Any,
    ) -> Renderer:
        """A renderer that shows its frames in a glfw window (fullscreen on `monitor`)."""
        target = WindowTarget(
            (size, size), title=title, fullscreen=fullscreen, monitor=monitor, vsync=vsync
        )
        return cls(target, size, post=post, **options)  # closes the target if it fails

    # --- per frame -----------------------------------------------------------------------

    def render(
        self,
        image_a: Any,  # uint8 [h, w, 3], numpy or a torch CPU tensor; top row first
        *,
        image_b: Any | None = None,  # the image faded to, same layout; any size
        mix: float = 0.0,  # 0 shows A, 1 shows B
        lyric: Lyric | None = None,  # the words on screen, drawn when post.text is on
        post: Post | None = None,  # None: the renderer's post
        flash: float = 0.0,  # 0 .. 1 towards white
        blackout: float = 0.0,  # 0 .. 1 towards black
    ) -> None:
        """Run the post chain on one frame; the result stays on the GPU until read/present."""
        post = post or self.post
        _check_upscale(post)
        text = self._text(lyric) if post.text and lyric is not None else None
        frame = FrameParams(
            post=post,
            size=self.size,
            mix=mix,
            lyric=lyric if text is not None else None,
            flash=flash,
            blackout=blackout,
        )
        textures = {"u_image_a": self._image("a", image_a, post.upscale)}
        textures["u_image_b"] = (
            self._image("b", image_b, post.upscale)
            if image_b is not None
            else textures["u_image_a"]
        )
        active = [e for e in self.effects if e.active(frame)]
        for e in self.effects:
            if e.feedback and e not in active:
                self._history_valid[e.name] = False  # restart cleanly when it comes back
        if text is not None:
            textures["u_text"] = text

        source: moderngl.Framebuffer | None = None
        for i, effect in enumerate(active):
            last = i == len(active) - 1
            if effect.feedback:
                previous, target = self._history[effect.name]
                self._history[effect.name].reverse()  # ping-pong: this output is read next frame
                textures["u_previous"] = (
                    previous if self._history_valid[effect.name] else source or self._output
                ).color_attachments[0]
                self._history_valid[effect.name] = True
            elif last:
                target = self._output
            else:
                target = self._work[1] if source is self._work[0] else self._work[0]
            if source is not None:
                textures["u_source"] = source.color_attachments[0]
            self._draw(effect.name, target, textures, effect.uniforms(frame))
            source = target
        if source is not self._output and source is not None:
            self.ctx.copy_framebuffer(self._output, source)

    def read(self, out: np.ndarray | None = None) -> np.ndarray:
        """The last rendered frame: uint8 [size, size, 3], top row first (as images are stored).

        out: a C-contiguous uint8 [size, size, 3] array to fill instead of a new one.
        """
        if out is None:
            out = np.empty((self.size, self.size, 3), np.uint8)
        elif (
            out.shape != (self.size, self.size, 3)
            or out.dtype != np.uint8
            or not out.flags.c_contiguous
        ):
            raise ValueError(
                f"out must be a C-contiguous uint8 array of shape "
                f"{(self.size, self.size, 3)}, got {out.dtype} {out.shape}"
            )
        # Straight into the caller's memory: on llvmpipe this beat a pixel-pack buffer
        # (0.8 vs 1.1 ms at 1024²), and a synchronous PBO gains nothing on a GPU either.
        self._output.read_into(out, components=3, alignment=1)
        return out

    def present(self) -> None:
        """Show the last rendered frame in the window (letterboxed, centred); no-op offscreen."""
        screen = self.target.screen
        if screen is None:
            return
        _, _, width, height = screen.viewport
        side = min(width, height)
        screen.use()
        screen.clear(0.0, 0.0, 0.0, 1.0)
        screen.viewport = ((width - side) // 2, (height - side) // 2, side, side)
        self._draw(PRESENT_SHADER, screen, {"u_source": self._output.color_attachments[0]}, {})
        self.target.swap()

    @property
    def should_close(self) -> bool:
        """True once the window was closed by its user."""
        return self.target.should_close

    def reset(self) -> None:
        """Forget the feedback history (a cut: the trail starts from the next frame)."""
        self._history_valid = dict.fromkeys(self._history_valid, False)

    def reload(self) -> list[str]:
        """Recompile changed shader files; return the errors (a broken one keeps its last build)."""
        errors = self._shaders.reload()
        for name in list(self._vao):
            if self._vao[name].program is not self._shaders.programs[name]:
                self._vao.pop(name).release()
        return errors

    # --- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        """Release all GL objects and the target (window or context)."""
        if self.target is None:
            return
        target, self.target = self.target, None
        target.close()  # releasing the context frees everything made in it

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- parts ---------------------------------------------------------------------------

    def _framebuffer(self, dtype: str) -> moderngl.Framebuffer:
        texture = self.ctx.texture((self.size, self.size), 4, dtype=dtype)
        texture.repeat_x = texture.repeat_y = False
        return self.ctx.framebuffer(color_attachments=[texture])

    def _draw(
        self,
        name: str,
        target: moderngl.Framebuffer,
        textures: Mapping[str, moderngl.Texture],
        uniforms: Mapping[str, Any],
    ) -> None:
        program = self._shaders.programs[name]
        unit = 0
        for sampler, texture in textures.items():
            if sampler in program:
                texture.use(location=unit)
                program[sampler].value = unit
                unit += 1
        for key, value in uniforms.items():
            if key in program:  # the GLSL compiler drops unused uniforms
                program[key].value = value
        target.use()
        vao = self._vao.get(name)
        if vao is None:
            vao = self._vao[name] = self.ctx.vertex_array(program, [])
        vao.render(moderngl.TRIANGLES, vertices=3)

    def _image(self, slot: str, image: Any, upscale: str) -> moderngl.Texture:
        """Upload an image; return a texture that samples it at the output size."""
        pixels = _as_rgb_uint8(image)
        height, width = pixels.shape[:2]
        texture = self._images.get(slot)
        if texture is None or texture.size != (width, height):
            if texture is not None:
                texture.release()
            texture = self._images[slot] = self.ctx.texture((width, height), 3, dtype="f1")
            texture.repeat_x = texture.repeat_y = False
        texture.write(pixels, alignment=1)
        resized = (width, height) != (self.size, self.size)
        shrunk = width > self.size or height > self.size
        # At 1:1 every filter gives the texels themselves; nearest is the exact way there.
        gl_filter = moderngl.LINEAR if resized and upscale == "bilinear" else moderngl.NEAREST
        texture.filter = (gl_filter, gl_filter)
        if not resized or upscale == "nearest" or (upscale == "bilinear" and not shrunk):
            return texture
        # Separable: x into [size, height], then y into [size, size] (12 lanczos taps, not 36);
        # shrinking widens the kernel, which a GL bilinear sampler cannot.
        filter_id = UPSCALE_FILTERS.index(upscale)
        across = self._scratch_target(f"{slot}-x", (self.size, height))
        self._draw(
            RESAMPLE_SHADER,
            across,
            {"u_image": texture},
            {"u_axis": (1, 0), "u_out_size": across.size, "u_filter": filter_id},
        )
        both = self._scratch_target(f"{slot}-xy", (self.size, self.size))
        self._draw(
            RESAMPLE_SHADER,
            both,
            {"u_image": across.color_attachments[0]},
            {"u_axis": (0, 1), "u_out_size": both.size, "u_filter": filter_id},
        )
        return both.color_attachments[0]

    def _scratch_target(self, key: str, size: tuple[int, int]) -> moderngl.Framebuffer:
        target = self._scratch.get(key)
        if target is None or target.size != size:
            if target is not None:
                target.release()
            texture = self.ctx.texture(size, 4, dtype="f2")
            texture.filter = (moderngl.NEAREST, moderngl.NEAREST)
            texture.repeat_x = texture.repeat_y = False
            target = self._scratch[key] = self.ctx.framebuffer(color_attachments=[texture])
        return target

    def _text(self, lyric: Lyric) -> moderngl.Texture | None:
        """The lyric's layer at its time as a texture; None while it is faded out entirely."""
        layout = self._lyrics.layout(lyric)
        alpha = layout.alpha(lyric.t, start=lyric.start, end=lyric.end)
        if alpha <= 0.0:
            return None
        # The layer is a function of the layout, the lit characters and the fade: upload it
        # only when one of them changed (a held line costs nothing per frame).
        shown = (layout, layout.sung_chars(lyric.t, start=lyric.start, end=lyric.end), alpha)
        last = self._text_shown
        if last is None or last[0] is not layout or last[1:] != shown[1:]:
            layer = layout.layer(lyric.t, start=lyric.start, end=lyric.end)
            self._text_texture.write(layer, alignment=1)
            self._text_shown = shown
        return self._text_texture


def _check_upscale(post: Post) -> None:
    if post.upscale not in UPSCALE_FILTERS:
        raise LyriscopeError(
            f"[post] upscale: expected one of {', '.join(UPSCALE_FILTERS)}, got {post.upscale!r}"
        )


def _as_traversable(folder: str | Path | Traversable) -> Traversable:
    if isinstance(folder, str | Path):
        folder = Path(folder)
        if not folder.is_dir():
            raise ShaderError(f"{folder}: shader folder not found")
    return folder


def _as_rgb_uint8(image: Any) -> np.ndarray:
    """A C-contiguous uint8 [h, w, 3] view of a numpy array or torch CPU tensor."""
    if hasattr(image, "detach"):  # torch, without importing it here
        if image.device.type != "cpu":
            image = image.cpu()
        image = image.detach().numpy()
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(
            f"expected an image as uint8 [height, width, 3], got {pixels.dtype} "
            f"{list(pixels.shape)}"
        )
    return np.ascontiguousarray(pixels)


__all__ = [
    "DEFAULT_CHAIN",
    "Effect",
    "FrameParams",
    "Renderer",
    "ShaderError",
    "copy_shaders",
    "default_shader_dir",
]
