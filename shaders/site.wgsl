// twinview site shader: one draw call for a whole site.
//
// Every vertex carries a part index. A part is a rigid piece of the site (a
// device's body, a pump impeller, the building) with optional motion, and
// belongs to a device (or to none, for scenery). Per-device visual state
// (paint colour and state flags) lives in a storage buffer that the viewer
// writes by index when telemetry changes, so a frame costs the same whatever
// the size of the site, and picking reports the device directly.

{$ include 'pygfx.std.wgsl' $}

// Device state flags; keep in sync with twinview.twin.overlays / scene.site_object.
const FLAG_SELECTED: u32 = 1u;
const FLAG_HOVERED: u32 = 2u;
const FLAG_STALE: u32 = 4u;
const FLAG_BAD: u32 = 8u;
const FLAG_ALARM: u32 = 16u;
const FLAG_OFFLINE: u32 = 32u;
const FLAG_PENDING: u32 = 64u;
const FLAG_HIDDEN: u32 = 128u;

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
    let part = i32(load_s_parts(i0));

    // Part table: [pivot.xyz, kind], [axis.xyz, rate], [phase, t0, amount, device]
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
    let normal_matrix = transpose(u_wobject.world_transform_inv);
    varyings.normal = vec3<f32>((normal_matrix * vec4<f32>(normal, 0.0)).xyz);
    varyings.base_color = vec4<f32>(unpack4x8unorm(load_s_colors(i0)));
    varyings.paint = vec4<f32>(paint);
    varyings.flags = f32(f32(flags));
    varyings.hidden = f32(select(0.0, 1.0, (flags & FLAG_HIDDEN) != 0u));

    varyings.pick_id = u32(u_wobject.global_id);
    varyings.pick_idx = u32(u32(device + 1));  // 0 = scenery
    return varyings;
}

fn hatch(px: vec2<f32>, spacing: f32, width: f32, dir: f32) -> bool {
    return fract((px.x + dir * px.y) / spacing) < width;
}

@fragment
fn fs_main(varyings: Varyings, @builtin(front_facing) is_front: bool) -> FragmentOutput {
    if (varyings.hidden > 0.5) {
        discard;
    }
    let flags = u32(round(varyings.flags));
    let px = varyings.position.xy;

    var n = normalize(varyings.normal);
    if (!is_front) {
        n = -n;
    }
    let cam_pos = (u_stdinfo.cam_transform_inv * vec4<f32>(0.0, 0.0, 0.0, 1.0)).xyz;
    let view_dir = normalize(cam_pos - varyings.world_pos);

    // Albedo: model colour, painted by the device's overlay colour (paint.a = strength).
    let base = srgb2physical(varyings.base_color.rgb);
    var albedo = mix(base, srgb2physical(varyings.paint.rgb), varyings.paint.a);

    // Truth first: values that are not current must not look current.
    if ((flags & FLAG_OFFLINE) != 0u) {
        let grey = dot(albedo, vec3<f32>(0.2126, 0.7152, 0.0722));
        albedo = vec3<f32>(grey * 0.35 + 0.02);
        if (hatch(px, 12.0, 0.18, 1.0) || hatch(px, 12.0, 0.18, -1.0)) {
            albedo = vec3<f32>(0.01);
        }
    } else if ((flags & FLAG_BAD) != 0u) {
        if (hatch(px, 8.0, 0.4, 1.0) || hatch(px, 8.0, 0.4, -1.0)) {
            albedo = srgb2physical(vec3<f32>(0.85, 0.10, 0.65));
        }
    } else if ((flags & FLAG_STALE) != 0u) {
        let grey = dot(albedo, vec3<f32>(0.2126, 0.7152, 0.0722));
        albedo = mix(vec3<f32>(grey), albedo, 0.2);
        if (hatch(px, 10.0, 0.45, 1.0)) {
            albedo = albedo * 0.45;
        }
    }

    // Lighting: a key light, a hemisphere ambient (sky above, ground below)
    // and a soft headlight so faces turned from the sun stay readable.
    let key_dir = normalize(vec3<f32>(0.45, 0.85, 0.35));
    let key = max(dot(n, key_dir), 0.0) * 0.7;
    let sky = vec3<f32>(0.62, 0.68, 0.78);
    let ground = vec3<f32>(0.30, 0.28, 0.26);
    let hemi = mix(ground, sky, n.y * 0.5 + 0.5) * 0.5;
    let head = max(dot(n, view_dir), 0.0) * 0.2;
    var color = albedo * (hemi + vec3<f32>(key + head));
    let half_dir = normalize(key_dir + view_dir);
    color = color + vec3<f32>(pow(max(dot(n, half_dir), 0.0), 32.0) * 0.08);

    let rim = pow(1.0 - max(dot(n, view_dir), 0.0), 2.0);
    if ((flags & FLAG_ALARM) != 0u) {
        let on = fract(u_material.time * 1.25) < 0.5;
        if (on) {
            color = mix(color, srgb2physical(vec3<f32>(1.0, 0.12, 0.08)), 0.55);
        }
    }
    if ((flags & FLAG_PENDING) != 0u) {
        if (hatch(px + vec2<f32>(u_material.time * 20.0, 0.0), 16.0, 0.2, 0.0)) {
            color = mix(color, srgb2physical(vec3<f32>(0.2, 0.6, 1.0)), 0.6);
        }
    }
    if ((flags & FLAG_HOVERED) != 0u) {
        color = color * 1.2 + vec3<f32>(0.05) + vec3<f32>(rim * 0.35);
    }
    if ((flags & FLAG_SELECTED) != 0u) {
        let accent = srgb2physical(u_material.accent.rgb);
        color = mix(color, accent, 0.55) + accent * rim * 1.5;
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
