// twinview site shader: a whole site in two draw calls (static and moving geometry).
//
// A static vertex names its device (or -1 for scenery). A moving vertex names
// its part: a rigid piece (an impeller, a valve stem, a level gauge) whose row
// in the part table holds its device and its motion, animated here from a
// time uniform. Per-device visual state (paint colour and state flags) lives
// in a storage buffer the viewer writes by index when telemetry changes, so a
// frame costs the same whatever the size of the site, and picking reports the
// device directly.
//
// Work is done per vertex wherever it can be (colour conversion, paint mix):
// on a software rasterizer every per-fragment instruction counts.

{$ include 'pygfx.std.wgsl' $}

// Device state flags (FLAG_*) come from vocabulary.wgsl, generated from twinview.twin.vocabulary
// and prepended to this file when the shader is built.

const MOTION_ROTATE: i32 = 1;
const MOTION_TRANSLATE: i32 = 2;
const MOTION_SCALE: i32 = 3;

struct VertexInput {
    @builtin(vertex_index) vertex_index : u32,
};

fn rotate_about_axis(v: vec3<f32>, axis: vec3<f32>, angle: f32) -> vec3<f32> {
    // Rodrigues' rotation formula
    let c = cos(angle);
    let s = sin(angle);
    return v * c + cross(axis, v) * s + axis * dot(axis, v) * (1.0 - c);
}

@vertex
fn vs_main(in: VertexInput) -> Varyings {
    let index = i32(in.vertex_index);
    let face_index = index / 3;
    let sub_index = index % 3;
    let vii = load_s_indices(face_index);
    let i0 = i32(vii[sub_index]);

    var pos = load_s_positions(i0);
    var normal = load_s_normals(i0);

    $$ if motion
    // Part table: [pivot.xyz, kind], [axis.xyz, rate], [phase, t0, amount, device]
    let part = load_s_per_vertex(i0);
    let pivot = load_s_part_info(part * 3);
    let axis = load_s_part_info(part * 3 + 1);
    let motion = load_s_part_info(part * 3 + 2);
    let kind = i32(pivot.w);
    let device = i32(round(motion.w));
    if (kind == MOTION_ROTATE) {
        let turns = motion.x + axis.w * (u_material.time - motion.y);
        let angle = 6.283185307179586 * fract(turns);
        pos = pivot.xyz + rotate_about_axis(pos - pivot.xyz, axis.xyz, angle);
        normal = rotate_about_axis(normal, axis.xyz, angle);
    } else if (kind == MOTION_TRANSLATE) {
        pos = pos + axis.xyz * motion.z;
    } else if (kind == MOTION_SCALE) {
        let along = dot(pos - pivot.xyz, axis.xyz);
        pos = pos + axis.xyz * along * (motion.z - 1.0);
    }
    $$ else
    let device = load_s_per_vertex(i0);
    $$ endif

    var paint = vec4<f32>(0.0, 0.0, 0.0, 0.0);
    var flags = 0u;
    if (device >= 0) {
        paint = load_s_devices(device * 2);
        flags = u32(round(load_s_devices(device * 2 + 1).x));
    }

    let world_pos = u_wobject.world_transform * vec4<f32>(pos, 1.0);
    var varyings: Varyings;
    varyings.position = vec4<f32>(u_stdinfo.projection_transform * u_stdinfo.cam_transform * world_pos);
    varyings.world_pos = vec3<f32>(world_pos.xyz / world_pos.w);
    varyings.normal = vec3<f32>((u_wobject.world_transform * vec4<f32>(normal, 0.0)).xyz);
    // Albedo: the model colour, painted by the device's overlay colour (paint.a = strength).
    let base = srgb2physical(unpack4x8unorm(load_s_colors(i0)).rgb);
    varyings.albedo = vec3<f32>(mix(base, srgb2physical(paint.rgb), paint.a));
    varyings.flags = f32(f32(flags));
    varyings.pick_id = u32(u_wobject.global_id);
    varyings.pick_idx = u32(u32(device + 1));  // 0 = scenery
    return varyings;
}

fn hatch(px: vec2<f32>, spacing: f32, width: f32, dir: f32) -> bool {
    return fract((px.x + dir * px.y) / spacing) < width;
}

@fragment
fn fs_main(varyings: Varyings, @builtin(front_facing) is_front: bool) -> FragmentOutput {
    let flags = u32(round(varyings.flags));
    if ((flags & FLAG_HIDDEN) != 0u) {
        discard;
    }
    var n = normalize(varyings.normal);
    if (!is_front) {
        n = -n;
    }
    let cam_pos = (u_stdinfo.cam_transform_inv * vec4<f32>(0.0, 0.0, 0.0, 1.0)).xyz;
    let view_dir = normalize(cam_pos - varyings.world_pos);
    var albedo = varyings.albedo;

    // Truth first: values that are not current must not look current.
    if ((flags & (FLAG_OFFLINE | FLAG_BAD | FLAG_STALE)) != 0u) {
        let px = varyings.position.xy;
        let grey = dot(albedo, vec3<f32>(0.2126, 0.7152, 0.0722));
        if ((flags & FLAG_OFFLINE) != 0u) {
            albedo = vec3<f32>(grey * 0.35 + 0.02);
            if (hatch(px, 12.0, 0.18, 1.0) || hatch(px, 12.0, 0.18, -1.0)) {
                albedo = vec3<f32>(0.01);
            }
        } else if ((flags & FLAG_BAD) != 0u) {
            if (hatch(px, 8.0, 0.4, 1.0) || hatch(px, 8.0, 0.4, -1.0)) {
                albedo = vec3<f32>(0.69, 0.01, 0.38);  // magenta, already physical
            }
        } else {
            albedo = mix(vec3<f32>(grey), albedo, 0.2);
            if (hatch(px, 10.0, 0.45, 1.0)) {
                albedo = albedo * 0.45;
            }
        }
    }

    // Lighting: a key light, a hemisphere ambient (sky above, ground below)
    // and a soft headlight so faces turned from the sun stay readable.
    let key_dir = vec3<f32>(0.4397, 0.8305, 0.3420);
    let key = max(dot(n, key_dir), 0.0) * 0.7;
    let hemi = mix(vec3<f32>(0.150, 0.139, 0.128), vec3<f32>(0.310, 0.340, 0.390), n.y * 0.5 + 0.5);
    let facing = max(dot(n, view_dir), 0.0);
    var color = albedo * (hemi + vec3<f32>(key + facing * 0.2));
    let h = max(dot(n, normalize(key_dir + view_dir)), 0.0);
    let h2 = h * h;
    let h4 = h2 * h2;
    let h8 = h4 * h4;
    let h16 = h8 * h8;
    color = color + vec3<f32>(h16 * h16 * 0.08);

    if ((flags & (FLAG_ALARM | FLAG_ALARM_UNACK | FLAG_PENDING | FLAG_HOVERED | FLAG_SELECTED)) != 0u) {
        let rim = (1.0 - facing) * (1.0 - facing);
        if ((flags & (FLAG_ALARM | FLAG_ALARM_UNACK)) != 0u) {
            // Severity colour (critical red, high orange, medium yellow, low cyan), physical values.
            let severity = (flags >> ALARM_SEVERITY_SHIFT) & 3u;
            var tint = vec3<f32>(1.0, 0.0123, 0.0070);
            if (severity == 2u) {
                tint = vec3<f32>(1.0, 0.216, 0.0);
            } else if (severity == 1u) {
                tint = vec3<f32>(1.0, 0.73, 0.0);
            } else if (severity == 0u) {
                tint = vec3<f32>(0.0, 0.6, 0.9);
            }
            let unack = (flags & FLAG_ALARM_UNACK) != 0u;
            let in_alarm = (flags & FLAG_ALARM) != 0u;
            // Unacknowledged: blinks; acknowledged and active: a steady tint; returned but not yet
            // acknowledged: a faint blink.
            if (in_alarm && !unack) {
                color = mix(color, tint, 0.45);
            } else if (fract(u_material.time * 1.25) < 0.5) {
                color = mix(color, tint, select(0.25, 0.6, in_alarm));
            }
        }
        if ((flags & FLAG_PENDING) != 0u) {
            if (hatch(varyings.position.xy + vec2<f32>(u_material.time * 20.0, 0.0), 16.0, 0.2, 0.0)) {
                color = mix(color, vec3<f32>(0.033, 0.319, 1.0), 0.6);
            }
        }
        if ((flags & FLAG_HOVERED) != 0u) {
            color = color * 1.2 + vec3<f32>(0.05) + vec3<f32>(rim * 0.35);
        }
        if ((flags & FLAG_SELECTED) != 0u) {
            let accent = srgb2physical(u_material.accent.rgb);
            color = mix(color, accent, 0.55) + accent * rim * 1.5;
        }
    }

    var out: FragmentOutput;
    out.color = vec4<f32>(color, 1.0);
    $$ if write_pick
    out.pick = (
        pick_pack(varyings.pick_id, 20) +
        pick_pack(varyings.pick_idx, 26) +
        pick_pack(0u, 9) +
        pick_pack(0u, 9)
    );
    $$ endif
    return out;
}
