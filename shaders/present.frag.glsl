#version 330 core
// Window output: the finished frame, flipped so its top row is at the top of the screen.

uniform sampler2D u_source;

in vec2 v_uv;
out vec4 f_color;

void main() {
    f_color = vec4(texture(u_source, vec2(v_uv.x, 1.0 - v_uv.y)).rgb, 1.0);
}
