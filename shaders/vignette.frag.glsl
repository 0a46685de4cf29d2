#version 330 core
// Vignette: darkens towards the corners; the centre is untouched.

uniform sampler2D u_source;
uniform float u_vignette;  // 0 none .. 1 black corners

in vec2 v_uv;
out vec4 f_color;

void main() {
    // r: 0 at the centre, 1 at the corners.
    float r = length(v_uv - 0.5) / length(vec2(0.5));
    float shade = 1.0 - u_vignette * smoothstep(0.4, 1.0, r);
    f_color = vec4(texture(u_source, v_uv).rgb * shade, 1.0);
}
