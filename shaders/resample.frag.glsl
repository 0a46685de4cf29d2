#version 330 core
// Resampling of a model image to the output size, one axis per pass (run for x, then y):
// 1 bilinear (used when shrinking), 2 bicubic (Keys, a = -0.5) or 3 lanczos (a = 3), as
// PIL's resize computes them: taps at texel centres, the kernel widened by the scale when
// shrinking, taps outside the image dropped, weights renormalised, each pass clamped to
// 0..1. Nearest, and bilinear when enlarging, need no pass (the sampler state does them).

uniform sampler2D u_image;
uniform ivec2 u_axis;      // (1, 0) resamples x, (0, 1) resamples y; the other axis is 1:1
uniform ivec2 u_out_size;  // this pass's target size in pixels
uniform int u_filter;      // 1 bilinear, 2 bicubic, 3 lanczos

out vec4 f_color;

const float PI = 3.14159265358979;

float sinc(float x) {
    if (abs(x) < 1e-5) return 1.0;
    float px = PI * x;
    return sin(px) / px;
}

float kernel(float x) {
    x = abs(x);
    if (u_filter == 1) return max(1.0 - x, 0.0);
    if (u_filter == 2) {
        if (x < 1.0) return (1.5 * x - 2.5) * x * x + 1.0;
        if (x < 2.0) return ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0;
        return 0.0;
    }
    return x < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0;
}

void main() {
    ivec2 in_size = textureSize(u_image, 0);
    int in_len = in_size.x * u_axis.x + in_size.y * u_axis.y;
    int out_len = u_out_size.x * u_axis.x + u_out_size.y * u_axis.y;
    ivec2 pixel = ivec2(gl_FragCoord.xy);
    float scale = float(in_len) / float(out_len);  // input texels per output pixel
    float stretch = max(scale, 1.0);  // widen the kernel when shrinking (no aliasing)
    float radius = float(u_filter) * stretch;  // the kernels' support is 1, 2 and 3
    float centre = (float(pixel.x * u_axis.x + pixel.y * u_axis.y) + 0.5) * scale;
    int first = max(int(floor(centre - radius)), 0);
    int last = min(int(ceil(centre + radius)), in_len - 1);
    vec3 total = vec3(0.0);
    float weight_sum = 0.0;
    for (int k = first; k <= last; ++k) {
        float w = kernel((float(k) + 0.5 - centre) / stretch);
        ivec2 texel = u_axis * k + (ivec2(1) - u_axis) * pixel;
        total += w * texelFetch(u_image, texel, 0).rgb;
        weight_sum += w;
    }
    f_color = vec4(clamp(total / weight_sum, 0.0, 1.0), 1.0);  // ringing clipped, as PIL does
}
