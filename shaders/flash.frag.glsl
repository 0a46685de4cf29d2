#version 330 core
// Live accents: flash towards white, blackout towards black.

uniform sampler2D u_source;
uniform float u_flash;     // 0 .. 1 (white)
uniform float u_blackout;  // 0 .. 1 (black)

in vec2 v_uv;
out vec4 f_color;

void main() {
    vec3 rgb = mix(texture(u_source, v_uv).rgb, vec3(1.0), u_flash);
    f_color = vec4(rgb * (1.0 - u_blackout), 1.0);
}
