#version 330 core
// First pass: the two line images at the output size, blended by u_mix. Images of another
// size arrive resampled (resample.frag.glsl) or are scaled here by the sampler's filter.

uniform sampler2D u_image_a;
uniform sampler2D u_image_b;
uniform float u_mix;  // 0 shows A, 1 shows B

in vec2 v_uv;
out vec4 f_color;

void main() {
    vec3 rgb = texture(u_image_a, v_uv).rgb;
    if (u_mix > 0.0) rgb = mix(rgb, texture(u_image_b, v_uv).rgb, u_mix);
    f_color = vec4(rgb, 1.0);
}
