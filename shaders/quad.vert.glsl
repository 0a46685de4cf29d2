#version 330 core
// One triangle that covers the viewport; no vertex buffer (gl_VertexID picks the corner).
// v_uv runs 0..1 across the viewport; v = 0 is the first row in memory, which the
// renderer keeps as the image's top row, so no pass ever flips (present.frag.glsl does).
out vec2 v_uv;

void main() {
    vec2 corner = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    v_uv = corner;
    gl_Position = vec4(corner * 2.0 - 1.0, 0.0, 1.0);
}
