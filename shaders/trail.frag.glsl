#version 330 core
// Feedback trail: blend with this pass's own output of the previous frame.

uniform sampler2D u_source;
uniform sampler2D u_previous;
uniform float u_trail;  // 0 none .. <1 long trail

in vec2 v_uv;
out vec4 f_color;

void main() {
    vec3 now = texture(u_source, v_uv).rgb;
    vec3 before = texture(u_previous, v_uv).rgb;
    f_color = vec4(mix(now, before, u_trail), 1.0);
}
