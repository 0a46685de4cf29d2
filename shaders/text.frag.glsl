#version 330 core
// Lyric text: an RGBA image of the line (drawn with Pillow) laid over the picture.

uniform sampler2D u_source;
uniform sampler2D u_text;  // straight (not premultiplied) alpha

in vec2 v_uv;
out vec4 f_color;

void main() {
    vec4 glyphs = texture(u_text, v_uv);
    f_color = vec4(mix(texture(u_source, v_uv).rgb, glyphs.rgb, glyphs.a), 1.0);
}
