#version 330 core
// The live show's HUD: a small RGBA panel (text on a dark backing) over the picture's top left.

uniform sampler2D u_source;
uniform sampler2D u_hud;  // straight alpha; row 0 is the panel's top row
uniform vec4 u_hud_rect;  // the panel in v_uv units: x0, y0, x1, y1 (y0 = top)

in vec2 v_uv;
out vec4 f_color;

void main() {
    vec3 rgb = texture(u_source, v_uv).rgb;
    vec2 p = (v_uv - u_hud_rect.xy) / (u_hud_rect.zw - u_hud_rect.xy);
    if (all(greaterThanEqual(p, vec2(0.0))) && all(lessThan(p, vec2(1.0)))) {
        vec4 panel = texture(u_hud, p);
        rgb = mix(rgb, panel.rgb, panel.a);
    }
    f_color = vec4(rgb, 1.0);
}
