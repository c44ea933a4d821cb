//! Renders an item: a type's composition (see `scenes`) with the nuisance that keeps the
//! task from being trivial (clothing and skin colours, background colour and texture,
//! scale, position, mirroring, bystanders, occlusion), and the person boxes a detector
//! would report.

use super::figure::{Figure, Headwear, Look, Pose, Xf};
use super::raster::{Canvas, P, Rgb};
use super::scenes::{self, Scene};
use rand::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Agent,
    Patient,
    Bystander,
}

#[derive(Clone, Debug)]
pub struct PersonBox {
    /// x, y, w, h in pixels.
    pub bbox: [f32; 4],
    pub role: Role,
}

pub struct Rendered {
    pub rgb: Vec<u8>,
    pub boxes: Vec<PersonBox>,
    /// Whether the agent appears left of the other person in the image.
    pub agent_left: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct Nuisance {
    pub bystander: f64,
    pub occlusion: f64,
}

fn hsv(h: f32, s: f32, v: f32) -> Rgb {
    let h = (h.rem_euclid(1.0)) * 6.0;
    let i = h.floor();
    let f = h - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    let c = match i as i32 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    };
    c.map(|x| x * 255.0)
}

const SKINS: [Rgb; 6] = [
    [245.0, 215.0, 190.0],
    [230.0, 185.0, 150.0],
    [200.0, 150.0, 110.0],
    [160.0, 110.0, 75.0],
    [120.0, 80.0, 55.0],
    [85.0, 55.0, 40.0],
];
const HAIRS: [Rgb; 5] = [
    [25.0, 20.0, 15.0],
    [70.0, 45.0, 25.0],
    [140.0, 95.0, 45.0],
    [200.0, 170.0, 100.0],
    [150.0, 150.0, 150.0],
];

pub fn random_look<R: Rng>(rng: &mut R) -> Look {
    Look {
        skin: SKINS[rng.random_range(0..SKINS.len())],
        shirt: hsv(
            rng.random(),
            rng.random_range(0.45..0.95),
            rng.random_range(0.3..0.92),
        ),
        pants: hsv(
            rng.random(),
            rng.random_range(0.2..0.7),
            rng.random_range(0.15..0.6),
        ),
        hair: HAIRS[rng.random_range(0..HAIRS.len())],
        head: Headwear::None,
        dress: false,
    }
}

fn canonical_looks() -> [Look; 2] {
    let l = |shirt: Rgb| Look {
        skin: SKINS[1],
        shirt,
        pants: [40.0, 40.0, 90.0],
        hair: HAIRS[0],
        head: Headwear::None,
        dress: false,
    };
    [l([200.0, 40.0, 40.0]), l([40.0, 150.0, 60.0])]
}

fn extent_box(pts: &[(P, f32)]) -> [f32; 4] {
    let mut b = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
    for (p, r) in pts {
        b[0] = b[0].min(p[0] - r);
        b[1] = b[1].min(p[1] - r);
        b[2] = b[2].max(p[0] + r);
        b[3] = b[3].max(p[1] + r);
    }
    b
}

fn background<R: Rng>(c: &mut Canvas, rng: &mut R, horizon: f32) {
    let wall = hsv(
        rng.random(),
        rng.random_range(0.05..0.35),
        rng.random_range(0.55..0.95),
    );
    let floor = hsv(
        rng.random(),
        rng.random_range(0.1..0.45),
        rng.random_range(0.3..0.7),
    );
    let texture = rng.random_range(0..5);
    let period = rng.random_range(4..10) as usize;
    let (w, h) = (c.w, c.h);
    for y in 0..h {
        for x in 0..w {
            let below = (y as f32) >= horizon;
            let mut col = if below { floor } else { wall };
            // Stripes, a sky gradient, speckle, brick courses; the floor gets a checker.
            let alt = |v: usize, a: f32| {
                if (v / period).is_multiple_of(2) {
                    a
                } else {
                    -a
                }
            };
            let shade = match (texture, below) {
                (1, false) => alt(x, 12.0),
                (2, false) => 30.0 * (1.0 - y as f32 / horizon.max(1.0)),
                (3, _) => rng.random_range(-10.0..10.0),
                (4, false) if y.is_multiple_of(period) => -25.0,
                (0 | 2 | 4, true) => alt(x + y, 8.0),
                _ => 0.0,
            };
            for v in col.iter_mut() {
                *v = (*v + shade).clamp(0.0, 255.0);
            }
            c.px[y * w + x] = col;
        }
    }
}

/// Draws one item. `key = None` draws a single person (no interaction).
pub fn render<R: Rng>(key: Option<&str>, size: u32, rng: &mut R, nz: Nuisance) -> Rendered {
    let looks = [random_look(rng), random_look(rng)];
    let mut scene = match key {
        Some(k) => scenes::compose(k, rng, looks, 1.0),
        None => scenes::solo(rng, looks[0]),
    };
    let mut roles = vec![Role::Agent, Role::Patient];
    roles.truncate(scene.figs.len());
    if rng.random_bool(nz.bystander) {
        add_bystander(&mut scene, rng);
        roles.push(Role::Bystander);
    }
    let m = if rng.random_bool(0.5) { -1.0 } else { 1.0 };
    let xf = fit(
        &scene,
        size as f32,
        m,
        rng.random_range(0.9..1.0),
        [rng.random(), rng.random()],
    );
    let n = size as usize;
    let mut c = Canvas::new(n, n, [0.0; 3]);
    let horizon = xf.gy - xf.s * rng.random_range(0.12..0.5);
    background(&mut c, rng, horizon);
    draw_scene(&mut c, &scene, &xf);
    if rng.random_bool(nz.occlusion) {
        let r = size as f32 * rng.random_range(0.12..0.2);
        let x = size as f32 * rng.random_range(0.1..0.9);
        let hair = HAIRS[rng.random_range(0..HAIRS.len())];
        c.capsule(
            [x - 2.2 * r, size as f32 + 0.6 * r],
            [x + 2.2 * r, size as f32 + 0.6 * r],
            r,
            hsv(rng.random(), 0.5, 0.4),
        );
        c.disc([x, size as f32 - 0.2 * r], r, hair);
    }
    let boxes = scene
        .figs
        .iter()
        .zip(roles)
        .map(|(f, role)| PersonBox {
            bbox: pixel_box(f, &xf, size as f32),
            role,
        })
        .collect();
    let agent_left =
        scene.figs.len() < 2 || (scene.figs[0].hip[0] - scene.figs[1].hip[0]) * m < 0.0;
    Rendered {
        rgb: c.to_rgb8(),
        boxes,
        agent_left,
    }
}

/// The type's scene without nuisance: fixed colours, plain background, centred, unmirrored.
pub fn render_canonical(key: &str, size: u32) -> Vec<u8> {
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let scene = scenes::compose(key, &mut rng, canonical_looks(), 0.0);
    let xf = fit(&scene, size as f32, 1.0, 0.9, [0.5, 0.5]);
    let n = size as usize;
    let mut c = Canvas::new(n, n, [200.0, 200.0, 190.0]);
    draw_scene(&mut c, &scene, &xf);
    c.to_rgb8()
}

fn add_bystander<R: Rng>(scene: &mut Scene, rng: &mut R) {
    let pts: Vec<(P, f32)> = scene.figs.iter().flat_map(|f| f.extent()).collect();
    let b = extent_box(&pts);
    let right = rng.random_bool(0.5);
    let gap = rng.random_range(0.02..0.3);
    let x = if right {
        b[2] + gap + 0.1
    } else {
        b[0] - gap - 0.1
    };
    let pose = match rng.random_range(0..3) {
        0 => Pose::front(),
        1 => Pose::stand(if right { -1.0 } else { 1.0 }),
        _ => Pose::stand(if right { 1.0 } else { -1.0 }).arms((20.0, 90.0), (25.0, 95.0)),
    };
    let f = Figure::new(pose, random_look(rng), x, None);
    scene.order.insert(0, scene.figs.len());
    scene.figs.push(f);
}

fn scene_box(scene: &Scene) -> [f32; 4] {
    let mut pts: Vec<(P, f32)> = scene.figs.iter().flat_map(|f| f.extent()).collect();
    for s in scene.back.iter().chain(scene.front.iter()) {
        pts.extend(s.extent());
    }
    extent_box(&pts)
}

/// Scales the scene to fill `zoom` of the image (at most) and places it at `pos` (0..1) of
/// the remaining slack.
fn fit(scene: &Scene, size: f32, m: f32, zoom: f32, pos: [f32; 2]) -> Xf {
    let b = scene_box(scene);
    let (bw, bh) = ((b[2] - b[0]).max(0.1), (b[3] - b[1]).max(0.1));
    let margin = size * 0.03;
    let s = ((size - 2.0 * margin) / bw)
        .min((size - 2.0 * margin) / bh)
        .min(size * 0.8)
        * zoom;
    let (lo, hi) = if m > 0.0 {
        (b[0], b[2])
    } else {
        (-b[2], -b[0])
    };
    let (cx0, cx1) = (margin - s * lo, size - margin - s * hi);
    let (gy0, gy1) = (margin + s * b[3], size - margin + s * b[1]);
    let lerp = |a: f32, b: f32, t: f32| {
        if b >= a {
            a + (b - a) * t
        } else {
            (a + b) / 2.0
        }
    };
    Xf {
        cx: lerp(cx0, cx1, pos[0]),
        gy: lerp(gy0, gy1, pos[1]),
        s,
        m,
    }
}

fn draw_scene(c: &mut Canvas, scene: &Scene, xf: &Xf) {
    for s in &scene.back {
        s.draw(c, xf);
    }
    for &i in &scene.order {
        if let Some(f) = scene.figs.get(i) {
            f.draw(c, xf);
        }
    }
    for s in &scene.front {
        s.draw(c, xf);
    }
}

fn pixel_box(f: &Figure, xf: &Xf, size: f32) -> [f32; 4] {
    let pts: Vec<(P, f32)> = f
        .extent()
        .into_iter()
        .map(|(p, r)| (xf.p(p), xf.r(r)))
        .collect();
    let b = extent_box(&pts);
    let (x0, y0) = (b[0].clamp(0.0, size), b[1].clamp(0.0, size));
    let (x1, y1) = (b[2].clamp(0.0, size), b[3].clamp(0.0, size));
    let r2 = |v: f32| (v * 100.0).round() / 100.0;
    [r2(x0), r2(y0), r2(x1 - x0), r2(y1 - y0)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toy::world::INTERACTIONS;
    use rand::SeedableRng;

    #[test]
    fn each_type_is_drawn_differently() {
        // Canonical renders of any two types differ clearly in at least a few dozen pixels.
        let imgs: Vec<Vec<u8>> = INTERACTIONS
            .iter()
            .map(|it| render_canonical(it.key, 64))
            .collect();
        let mut worst = (usize::MAX, "", "");
        for i in 0..imgs.len() {
            for j in 0..i {
                let differing = imgs[i]
                    .chunks(3)
                    .zip(imgs[j].chunks(3))
                    .filter(|(a, b)| {
                        a.iter()
                            .zip(b.iter())
                            .map(|(x, y)| (*x as i32 - *y as i32).abs())
                            .sum::<i32>()
                            > 60
                    })
                    .count();
                if differing < worst.0 {
                    worst = (differing, INTERACTIONS[i].key, INTERACTIONS[j].key);
                }
            }
        }
        assert!(worst.0 >= 40, "types too alike: {worst:?}");
    }

    #[test]
    fn boxes_lie_inside_the_image() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for it in INTERACTIONS {
            let r = render(
                Some(it.key),
                64,
                &mut rng,
                Nuisance {
                    bystander: 0.5,
                    occlusion: 0.2,
                },
            );
            assert_eq!(r.rgb.len(), 64 * 64 * 3);
            for b in &r.boxes {
                assert!(
                    b.bbox[0] >= 0.0
                        && b.bbox[0] + b.bbox[2] <= 64.01
                        && b.bbox[2] > 3.0
                        && b.bbox[3] > 3.0,
                    "{} {:?}",
                    it.key,
                    b
                );
            }
        }
    }
}
