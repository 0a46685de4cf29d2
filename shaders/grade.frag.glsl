#version 330 core
// Colour grade on the sRGB-encoded values: brightness, then contrast, then saturation.

uniform sampler2D u_source;
uniform float u_brightness;  // added, -1 .. 1
uniform float u_contrast;    // multiplier around mid grey
uniform float u_saturation;  // 0 grey .. 1 as is .. >1 vivid

in vec2 v_uv;
out vec4 f_color;

const vec3 LUMA = vec3(0.2126, 0.7152, 0.0722);  // Rec. 709 weights

void main() {
    vec3 rgb = texture(u_source, v_uv).rgb + u_brightness;
    rgb = (rgb - 0.5) * u_contrast + 0.5;
    rgb = mix(vec3(dot(rgb, LUMA)), rgb, u_saturation);
    f_color = vec4(clamp(rgb, 0.0, 1.0), 1.0);
}
