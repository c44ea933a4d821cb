//! One composition per interaction type, in the pair frame (see `figure`): person A (the
//! agent) on the left facing right, person B on the right, plus the props that make the
//! type recognisable. `jitter` scales the random variation (0 gives the canonical scene).

use super::figure::Xf;
use super::figure::{Figure, Headwear, Look, Pose};
use super::raster::{Canvas, P, Rgb};
use rand::Rng;

#[derive(Clone, Debug)]
pub enum Shape {
    Cap(P, P, f32, Rgb),
    Disc(P, f32, Rgb),
    Ring(P, f32, f32, Rgb),
    Poly(Vec<P>, Rgb),
}

impl Shape {
    pub fn draw(&self, c: &mut Canvas, xf: &Xf) {
        match self {
            Shape::Cap(a, b, r, col) => c.capsule(xf.p(*a), xf.p(*b), xf.r(*r), *col),
            Shape::Disc(o, r, col) => c.disc(xf.p(*o), xf.r(*r), *col),
            Shape::Ring(o, r, w, col) => c.ring(xf.p(*o), xf.r(*r), xf.r(*w), *col),
            Shape::Poly(pts, col) => {
                c.poly(&pts.iter().map(|p| xf.p(*p)).collect::<Vec<_>>(), *col)
            }
        }
    }

    pub fn extent(&self) -> Vec<(P, f32)> {
        match self {
            Shape::Cap(a, b, r, _) => vec![(*a, *r), (*b, *r)],
            Shape::Disc(o, r, _) => vec![(*o, *r)],
            Shape::Ring(o, r, w, _) => vec![(*o, r + w)],
            Shape::Poly(pts, _) => pts.iter().map(|p| (*p, 0.0)).collect(),
        }
    }
}

pub struct Scene {
    /// A then B (more may follow for bystanders, added later).
    pub figs: Vec<Figure>,
    /// Figures are drawn in this order (indices into `figs`).
    pub order: Vec<usize>,
    pub back: Vec<Shape>,
    pub front: Vec<Shape>,
}

fn rect(x0: f32, y0: f32, x1: f32, y1: f32, c: Rgb) -> Shape {
    Shape::Poly(vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]], c)
}

const WHITE: Rgb = [240.0, 240.0, 240.0];
const GOLD: Rgb = [225.0, 185.0, 40.0];
const WOOD: Rgb = [125.0, 80.0, 40.0];
const STEEL: Rgb = [95.0, 95.0, 105.0];

fn ball(o: P) -> Vec<Shape> {
    vec![
        Shape::Disc(o, 0.06, WHITE),
        Shape::Disc([o[0] + 0.01, o[1] + 0.005], 0.025, [20.0; 3]),
    ]
}

/// Two people sitting face to face at a small table.
fn table_scene(la: Look, lb: Look, d: f32, lean: f32) -> (Figure, Figure, Vec<Shape>) {
    let a = Figure::new(
        Pose::stand(1.0)
            .lean(lean)
            .legs((85.0, 0.0), (92.0, 2.0))
            .arms((30.0, 80.0), (30.0, 80.0)),
        la,
        -d / 2.0,
        None,
    );
    let b = Figure::new(
        Pose::stand(-1.0)
            .lean(lean)
            .legs((85.0, 0.0), (92.0, 2.0))
            .arms((30.0, 80.0), (30.0, 80.0)),
        lb,
        d / 2.0,
        None,
    );
    let mut back = Vec::new();
    for f in [&a, &b] {
        let h = f.hip;
        back.push(Shape::Cap(
            [h[0] - 0.06, h[1] - 0.05],
            [h[0] + 0.06, h[1] - 0.05],
            0.02,
            STEEL,
        ));
        back.push(Shape::Cap([h[0], h[1] - 0.05], [h[0], 0.0], 0.018, STEEL));
    }
    back.push(Shape::Cap([-0.2, 0.0], [-0.2, 0.42], 0.02, WOOD));
    back.push(Shape::Cap([0.2, 0.0], [0.2, 0.42], 0.02, WOOD));
    (a, b, back)
}

pub fn compose<R: Rng>(key: &str, rng: &mut R, looks: [Look; 2], jitter: f32) -> Scene {
    let mut j = |amt: f32| (rng.random::<f32>() * 2.0 - 1.0) * amt * jitter;
    let [mut la, mut lb] = looks;
    let mut back: Vec<Shape> = Vec::new();
    let mut front: Vec<Shape> = Vec::new();
    let mut order = vec![0, 1];
    let stand = |f: f32, jit: &mut dyn FnMut(f32) -> f32| {
        Pose::stand(f)
            .legs((-6.0 + jit(5.0), -2.0), (7.0 + jit(5.0), 2.0))
            .lean(jit(4.0))
    };
    let (a, b) = match key {
        "handshake" => {
            let d = 0.52 + j(0.06);
            let mut a = Figure::new(stand(1.0, &mut j), la, -d / 2.0, None);
            let mut b = Figure::new(stand(-1.0, &mut j), lb, d / 2.0, None);
            let y = 0.5 + j(0.04);
            a.reach(1, [0.0, y]);
            b.reach(1, [0.0, y]);
            (a, b)
        }
        "hug" => {
            let d = 0.2 + j(0.03);
            let mut a = Figure::new(stand(1.0, &mut j).lean(12.0 + j(5.0)), la, -d / 2.0, None);
            let mut b = Figure::new(
                stand(-1.0, &mut j).lean(12.0 + j(5.0)).tilt(-20.0),
                lb,
                d / 2.0,
                None,
            );
            let (ah, bh) = (a.hip[0], b.hip[0]);
            a.reach(0, [bh + 0.08, 0.68]);
            a.reach(1, [bh + 0.08, 0.6]);
            b.reach(0, [ah - 0.08, 0.7]);
            b.reach(1, [ah - 0.08, 0.62]);
            (a, b)
        }
        "highfive" => {
            let d = 0.46 + j(0.05);
            let mut a = Figure::new(stand(1.0, &mut j), la, -d / 2.0, None);
            let mut b = Figure::new(stand(-1.0, &mut j), lb, d / 2.0, None);
            let y = 1.02 + j(0.04);
            a.reach(1, [0.0, y]);
            b.reach(1, [0.0, y]);
            (a, b)
        }
        "plaque" | "trophy" | "flowers" => {
            let d = 0.6 + j(0.06);
            let mut a = Figure::new(stand(1.0, &mut j), la, -d / 2.0, None);
            let mut b = Figure::new(stand(-1.0, &mut j), lb, d / 2.0, None);
            let y = 0.58 + j(0.04);
            a.reach(1, [-0.06, y]);
            a.reach(0, [-0.05, y - 0.02]);
            b.reach(1, [0.06, y]);
            match key {
                "plaque" => {
                    front.push(rect(-0.11, y - 0.02, 0.11, y + 0.15, WOOD));
                    front.push(rect(-0.07, y + 0.02, 0.07, y + 0.11, GOLD));
                }
                "trophy" => {
                    front.push(Shape::Ring([-0.08, y + 0.19], 0.035, 0.018, GOLD));
                    front.push(Shape::Ring([0.08, y + 0.19], 0.035, 0.018, GOLD));
                    front.push(Shape::Poly(
                        vec![
                            [-0.085, y + 0.27],
                            [0.085, y + 0.27],
                            [0.035, y + 0.1],
                            [-0.035, y + 0.1],
                        ],
                        GOLD,
                    ));
                    front.push(Shape::Cap([0.0, y + 0.1], [0.0, y + 0.02], 0.018, GOLD));
                    front.push(rect(-0.06, y - 0.02, 0.06, y + 0.02, WOOD));
                }
                _ => {
                    let blooms: [Rgb; 4] = [
                        [220.0, 30.0, 50.0],
                        [240.0, 120.0, 180.0],
                        [245.0, 210.0, 30.0],
                        [150.0, 60.0, 200.0],
                    ];
                    let tops = [
                        [-0.07, y + 0.2],
                        [0.0, y + 0.24],
                        [0.07, y + 0.2],
                        [-0.03, y + 0.17],
                        [0.04, y + 0.16],
                    ];
                    for (k, t) in tops.iter().enumerate() {
                        front.push(Shape::Cap([0.0, y], *t, 0.012, [40.0, 140.0, 40.0]));
                        let c = if jitter > 0.0 {
                            blooms[(k + (j(10.0).abs() as usize)) % 4]
                        } else {
                            blooms[k % 4]
                        };
                        front.push(Shape::Disc(*t, 0.04, c));
                    }
                    front.push(Shape::Poly(
                        vec![
                            [-0.03, y - 0.03],
                            [0.03, y - 0.03],
                            [0.07, y + 0.1],
                            [-0.07, y + 0.1],
                        ],
                        WHITE,
                    ));
                }
            }
            (a, b)
        }
        "kiss" => {
            // Heads together, bodies apart: an A-shaped silhouette, unlike the hug's.
            let d = 0.4 + j(0.03);
            let lean = 25.0 + j(3.0);
            let mut a = Figure::new(stand(1.0, &mut j).lean(lean).tilt(15.0), la, -d / 2.0, None);
            let mut b = Figure::new(stand(-1.0, &mut j).lean(lean).tilt(15.0), lb, d / 2.0, None);
            let (an, bn) = (a.neck, b.neck);
            a.reach(1, [bn[0] - 0.02, bn[1] - 0.04]);
            b.reach(1, [an[0] + 0.02, an[1] - 0.04]);
            (a, b)
        }
        "kick" => {
            let d = 1.25 + j(0.1);
            let mut a = Figure::new(
                Pose::stand(1.0)
                    .lean(-8.0 + j(4.0))
                    .legs((0.0, 0.0), (72.0 + j(10.0), 85.0 + j(10.0)))
                    .arms((-45.0, -25.0), (45.0, 30.0)),
                la,
                -d / 2.0,
                None,
            );
            let b = Figure::new(
                stand(-1.0, &mut j).arms((25.0, 20.0), (30.0, 25.0)),
                lb,
                d / 2.0,
                None,
            );
            let f = a.feet[1];
            back.extend(ball([f[0] + 0.12 + j(0.1).abs() * 2.0, 0.07]));
            a.reach(0, [a.hip[0] - 0.25, 0.6]);
            (a, b)
        }
        "throw" => {
            let d = 1.25 + j(0.1);
            let a = Figure::new(
                Pose::stand(1.0)
                    .legs((-22.0, -10.0), (25.0, 8.0))
                    .arms((70.0 + j(10.0), 80.0), (150.0 + j(10.0), 165.0 + j(8.0))),
                la,
                -d / 2.0,
                None,
            );
            let b = Figure::new(
                stand(-1.0, &mut j).arms((145.0 + j(8.0), 160.0), (150.0 + j(8.0), 170.0)),
                lb,
                d / 2.0,
                None,
            );
            let x = -0.1 + j(0.2);
            back.extend(ball([x, 1.05 + j(0.08)]));
            (a, b)
        }
        "boxing" => {
            let d = 0.5 + j(0.04);
            la.shirt = la.skin;
            lb.shirt = lb.skin;
            let p = |f| {
                Pose::stand(f)
                    .lean(10.0)
                    .legs((-22.0, -5.0), (22.0, 0.0))
                    .arms((55.0, 165.0), (60.0, 160.0))
            };
            let mut a = Figure::new(p(1.0), la, -d / 2.0, None);
            let mut b = Figure::new(p(-1.0), lb, d / 2.0, None);
            let (ah, bh) = (a.head, b.head);
            a.reach(1, [bh[0] - 0.05, bh[1] - 0.03 + j(0.04)]);
            if jitter == 0.0 || j(1.0) > 0.0 {
                b.reach(1, [ah[0] + 0.12, ah[1] - 0.12]);
            }
            for f in [&a, &b] {
                for h in f.hands {
                    front.push(Shape::Disc(h, 0.05, [210.0, 25.0, 25.0]));
                }
            }
            for (k, y) in [0.45f32, 0.65, 0.85].iter().enumerate() {
                let c = [[200.0, 30.0, 30.0], WHITE, [30.0, 50.0, 200.0]][k];
                back.push(Shape::Cap([-0.75, *y], [0.75, *y], 0.014, c));
            }
            back.push(Shape::Cap([-0.77, 0.0], [-0.77, 0.9], 0.025, STEEL));
            back.push(Shape::Cap([0.77, 0.0], [0.77, 0.9], 0.025, STEEL));
            (a, b)
        }
        "wrestling" => {
            let d = 0.44 + j(0.04);
            let p = |f| {
                Pose::stand(f)
                    .lean(62.0)
                    .legs((-35.0, -5.0), (45.0, -10.0))
                    .tilt(10.0)
            };
            let mut a = Figure::new(p(1.0), la, -d / 2.0, None);
            let mut b = Figure::new(p(-1.0), lb, d / 2.0, None);
            let (an, bn, ah, bh) = (a.neck, b.neck, a.hip, b.hip);
            a.reach(1, [bn[0] + 0.04, bn[1] + 0.03]);
            a.reach(0, [bh[0] - 0.02, bh[1] + 0.05]);
            b.reach(1, [an[0] - 0.04, an[1] - 0.02]);
            b.reach(0, [ah[0] + 0.02, ah[1] + 0.05]);
            back.push(rect(-0.8, -0.07, 0.8, 0.0, [40.0, 80.0, 185.0]));
            back.push(Shape::Cap(
                [-0.45, -0.035],
                [0.45, -0.035],
                0.012,
                [230.0, 200.0, 40.0],
            ));
            (a, b)
        }
        "dance" => {
            let d = 0.28 + j(0.03);
            lb.dress = true;
            let mut a = Figure::new(
                Pose::stand(1.0).legs((-20.0, -5.0), (22.0, 4.0)).lean(-4.0),
                la,
                -d / 2.0,
                None,
            );
            let mut b = Figure::new(
                Pose::stand(-1.0)
                    .legs((-10.0, 0.0), (10.0, 0.0))
                    .lean(-8.0)
                    .tilt(-10.0),
                lb,
                d / 2.0,
                None,
            );
            let (an, bh) = (a.neck, b.hip);
            let up = 0.98 + j(0.04);
            a.reach(1, [bh[0] + 0.06, 0.62]);
            a.reach(0, [0.02, up]);
            b.reach(1, [an[0] + 0.02, an[1] - 0.02]);
            b.reach(0, [0.02, up]);
            (a, b)
        }
        "interview" => {
            let d = 0.55 + j(0.05);
            let mut a = Figure::new(
                stand(1.0, &mut j).arms((45.0, 100.0), (60.0, 60.0)),
                la,
                -d / 2.0,
                None,
            );
            let b = Figure::new(
                stand(-1.0, &mut j).arms((10.0, 5.0), (25.0 + j(10.0), 50.0)),
                lb,
                d / 2.0,
                None,
            );
            let mouth = [b.head[0] - 0.095, b.head[1] - 0.03];
            let dir = [0.94, 0.34];
            let hand = [mouth[0] - dir[0] * 0.13, mouth[1] - dir[1] * 0.13];
            a.reach(1, hand);
            let h = a.hands[1];
            let tip = [h[0] + dir[0] * 0.1, h[1] + dir[1] * 0.1];
            front.push(Shape::Cap(h, tip, 0.014, [30.0; 3]));
            front.push(Shape::Disc(tip, 0.03, [15.0; 3]));
            front.push(rect(
                h[0] + dir[0] * 0.03 - 0.02,
                h[1] + 0.01,
                h[0] + dir[0] * 0.03 + 0.02,
                h[1] + 0.05,
                [200.0, 30.0, 30.0],
            ));
            let h0 = a.hands[0];
            front.push(rect(h0[0] - 0.03, h0[1], h0[0] + 0.02, h0[1] + 0.06, WHITE));
            (a, b)
        }
        "lecture" => {
            let d = 1.0 + j(0.08);
            let mut a = Figure::new(
                stand(1.0, &mut j).arms((0.0, 0.0), (70.0 + j(10.0), 110.0)),
                la,
                -d / 2.0,
                None,
            );
            let b = Figure::new(
                Pose::stand(-1.0)
                    .legs((88.0, 0.0), (92.0, 2.0))
                    .arms((25.0, 80.0), (30.0, 85.0)),
                lb,
                d / 2.0,
                None,
            );
            let bx = -d / 2.0 - 0.38;
            back.push(rect(bx - 0.2, 0.42, bx + 0.2, 0.98, [236.0, 236.0, 232.0]));
            for k in 0..3 {
                let y = 0.85 - 0.11 * k as f32;
                back.push(Shape::Cap(
                    [bx - 0.14, y],
                    [bx + 0.1 - 0.05 * k as f32, y],
                    0.012,
                    [40.0, 40.0, 90.0],
                ));
            }
            back.push(Shape::Cap([bx - 0.2, 0.42], [bx - 0.2, 0.0], 0.015, STEEL));
            back.push(Shape::Cap([bx + 0.2, 0.42], [bx + 0.2, 0.0], 0.015, STEEL));
            a.reach(0, [bx + 0.08, 0.9]);
            let h = b.hip;
            back.push(Shape::Cap(
                [h[0] + 0.05, h[1] - 0.05],
                [h[0] - 0.17, h[1] - 0.05],
                0.022,
                WOOD,
            ));
            back.push(Shape::Cap(
                [h[0] + 0.06, h[1] - 0.05],
                [h[0] + 0.08, h[1] + 0.3],
                0.022,
                WOOD,
            ));
            back.push(Shape::Cap(
                [h[0] + 0.05, h[1] - 0.05],
                [h[0] + 0.05, 0.0],
                0.018,
                WOOD,
            ));
            back.push(Shape::Cap(
                [h[0] - 0.16, h[1] - 0.05],
                [h[0] - 0.16, 0.0],
                0.018,
                WOOD,
            ));
            (a, b)
        }
        "carry" => {
            let mut a = Figure::new(Pose::front().legs((12.0, 4.0), (12.0, 4.0)), la, 0.0, None);
            let mut b = Figure::new(
                Pose::stand(1.0)
                    .lean(95.0 + j(8.0))
                    .legs((-95.0, -5.0), (-88.0, 0.0))
                    .arms((20.0, 40.0), (60.0, 60.0)),
                lb,
                -0.13 + j(0.03),
                Some(0.6 + j(0.04)),
            );
            let (bh, bk) = (b.hip, b.knees[1]);
            a.reach(0, [bk[0] + 0.02, bk[1] - 0.02]);
            a.reach(1, [bh[0] + 0.2, bh[1] - 0.03]);
            let an = a.neck;
            b.reach(1, [an[0] + 0.03, an[1] - 0.02]);
            order = vec![1, 0];
            (a, b)
        }
        "wheelchair" => {
            let bx = 0.2 + j(0.04);
            let b = Figure::new(
                Pose::stand(1.0)
                    .legs((85.0, 5.0), (90.0, 8.0))
                    .arms((25.0, 80.0), (30.0, 85.0)),
                lb,
                bx,
                Some(0.32),
            );
            let h = b.hip;
            let handle = [h[0] - 0.2, 0.62];
            let mut a = Figure::new(
                stand(1.0, &mut j)
                    .lean(15.0 + j(4.0))
                    .legs((-18.0, -4.0), (18.0, 2.0)),
                la,
                h[0] - 0.58,
                None,
            );
            a.reach(0, handle);
            a.reach(1, handle);
            back.push(Shape::Cap(
                [h[0] - 0.1, h[1] - 0.04],
                [h[0] - 0.12, 0.6],
                0.022,
                STEEL,
            ));
            back.push(Shape::Cap([h[0] - 0.12, 0.6], handle, 0.02, STEEL));
            front.push(Shape::Ring([h[0] - 0.02, 0.2], 0.19, 0.03, [45.0; 3]));
            front.push(Shape::Cap(
                [h[0] - 0.02, 0.2],
                [h[0] - 0.02, h[1] - 0.03],
                0.015,
                STEEL,
            ));
            front.push(Shape::Cap(
                [h[0] - 0.08, h[1] - 0.05],
                [h[0] + 0.17, h[1] - 0.05],
                0.02,
                STEEL,
            ));
            front.push(Shape::Disc([b.feet[1][0] + 0.02, 0.04], 0.04, [45.0; 3]));
            (a, b)
        }
        "swing" => {
            let pivot = [0.05, 1.35];
            let hy = 0.45 + j(0.03);
            let bx = 0.18 + j(0.04);
            let mut b = Figure::new(
                Pose::stand(1.0)
                    .lean(-12.0)
                    .legs((75.0, 40.0), (80.0, 45.0)),
                lb,
                bx,
                Some(hy),
            );
            let h = b.hip;
            let seat = [h[0], h[1] - 0.04];
            b.reach(
                0,
                [
                    pivot[0] + (seat[0] - pivot[0]) * 0.6,
                    pivot[1] + (seat[1] - pivot[1]) * 0.6,
                ],
            );
            b.reach(
                1,
                [
                    pivot[0] + (seat[0] - pivot[0]) * 0.62,
                    pivot[1] + (seat[1] - pivot[1]) * 0.62,
                ],
            );
            let mut a = Figure::new(
                stand(1.0, &mut j)
                    .lean(14.0)
                    .legs((-20.0, -4.0), (15.0, 2.0)),
                la,
                h[0] - 0.55,
                None,
            );
            a.reach(0, [h[0] - 0.09, h[1] + 0.18]);
            a.reach(1, [h[0] - 0.08, h[1] + 0.12]);
            back.push(Shape::Cap([-0.75, 0.0], [-0.6, pivot[1]], 0.025, WOOD));
            back.push(Shape::Cap([0.75, 0.0], [0.6, pivot[1]], 0.025, WOOD));
            back.push(Shape::Cap([-0.62, pivot[1]], [0.62, pivot[1]], 0.03, WOOD));
            front.push(Shape::Cap(pivot, seat, 0.012, [70.0; 3]));
            front.push(Shape::Cap(
                [seat[0] - 0.09, seat[1]],
                [seat[0] + 0.09, seat[1]],
                0.02,
                [60.0, 40.0, 20.0],
            ));
            (a, b)
        }
        "propose" => {
            let d = 0.55 + j(0.05);
            let mut a = Figure::new(
                Pose::stand(1.0)
                    .legs((2.0, -88.0), (88.0, 2.0))
                    .arms((10.0, 10.0), (60.0, 90.0)),
                la,
                -d / 2.0,
                None,
            );
            let mut b = Figure::new(stand(-1.0, &mut j), lb, d / 2.0, None);
            a.reach(1, [b.hip[0] - 0.2, 0.55 + j(0.04)]);
            let h = a.hands[1];
            front.push(rect(
                h[0] - 0.03,
                h[1],
                h[0] + 0.03,
                h[1] + 0.05,
                [150.0, 20.0, 40.0],
            ));
            front.push(Shape::Disc([h[0], h[1] + 0.07], 0.022, GOLD));
            let bh = b.head;
            b.reach(1, [bh[0] - 0.06, bh[1] - 0.05]);
            (a, b)
        }
        "helpup" => {
            let d = 0.62 + j(0.05);
            let mut a = Figure::new(
                stand(1.0, &mut j)
                    .lean(28.0 + j(5.0))
                    .legs((-18.0, -3.0), (14.0, 2.0)),
                la,
                -d / 2.0,
                None,
            );
            let mut b = Figure::new(
                Pose::stand(-1.0)
                    .lean(-22.0)
                    .legs((80.0, 92.0), (95.0, 60.0))
                    .arms((-30.0, 0.0), (30.0, 40.0)),
                lb,
                d / 2.0,
                None,
            );
            let t = [-0.02, 0.42 + j(0.04)];
            a.reach(1, t);
            b.reach(1, t);
            (a, b)
        }
        "fencing" => {
            let d = 1.0 + j(0.06);
            for l in [&mut la, &mut lb] {
                l.shirt = [238.0, 238.0, 232.0];
                l.pants = [225.0, 225.0, 220.0];
                l.head = Headwear::Mask;
            }
            let p = |f| {
                Pose::stand(f)
                    .legs((-45.0, -40.0), (55.0, 2.0))
                    .arms((-135.0, -165.0), (82.0, 88.0))
            };
            let a = Figure::new(p(1.0), la, -d / 2.0, None);
            let b = Figure::new(p(-1.0), lb, d / 2.0, None);
            for f in [&a, &b] {
                let h = f.hands[1];
                let u = f.forearm_dir(1);
                front.push(Shape::Cap(
                    h,
                    [h[0] + u[0] * 0.45, h[1] + u[1] * 0.45 + j(0.03)],
                    0.01,
                    [185.0, 185.0, 195.0],
                ));
                front.push(Shape::Disc(h, 0.03, [170.0, 170.0, 180.0]));
            }
            (a, b)
        }
        "armwrestle" | "chess" => {
            let d = if key == "chess" { 0.78 } else { 0.72 } + j(0.04);
            let lean = if key == "chess" { 12.0 } else { 28.0 };
            let (mut a, mut b, mut bk) = table_scene(la, lb, d, lean + j(4.0));
            if key == "armwrestle" {
                a.reach(1, [-0.01, 0.6]);
                b.reach(1, [0.01, 0.6]);
                a.reach(0, [-0.14, 0.45]);
                b.reach(0, [0.14, 0.45]);
                front.push(Shape::Disc([0.0, 0.6], 0.04, la.skin));
            } else {
                a.reach(1, [-0.06, 0.5 + j(0.02)]);
                let bh = b.head;
                b.reach(1, [bh[0] - 0.04, bh[1] - 0.09]);
                for k in 0..6 {
                    let x = -0.15 + 0.05 * k as f32;
                    let c = if k % 2 == 0 { [20.0; 3] } else { WHITE };
                    bk.push(rect(x, 0.43, x + 0.05, 0.46, c));
                }
                for (x, c) in [
                    (-0.12, WHITE),
                    (-0.04, WHITE),
                    (0.05, [20.0; 3]),
                    (0.11, [20.0; 3]),
                ] {
                    bk.push(Shape::Cap([x, 0.47], [x, 0.52], 0.016, c));
                }
            }
            bk.push(Shape::Cap([-0.22, 0.42], [0.22, 0.42], 0.025, WOOD));
            back = bk;
            (a, b)
        }
        "tennis" => {
            let d = 1.55 + j(0.1);
            let p = |f| {
                Pose::stand(f)
                    .lean(10.0)
                    .legs((-20.0, -8.0), (25.0, 5.0))
                    .arms((30.0, 60.0), (100.0, 110.0))
            };
            let a = Figure::new(
                p(1.0).arms((30.0, 60.0), (125.0 + j(15.0), 140.0)),
                la,
                -d / 2.0,
                None,
            );
            let b = Figure::new(p(-1.0), lb, d / 2.0, None);
            back.push(rect(-0.32, 0.0, 0.32, 0.3, [90.0, 90.0, 95.0]));
            for k in 0..7 {
                let x = -0.3 + 0.1 * k as f32;
                back.push(Shape::Cap([x, 0.0], [x, 0.3], 0.006, [150.0; 3]));
            }
            back.push(Shape::Cap([-0.33, 0.3], [0.33, 0.3], 0.02, WHITE));
            let rc: [Rgb; 3] = [[30.0, 60.0, 200.0], [200.0, 40.0, 40.0], [20.0; 3]];
            for (k, f) in [&a, &b].into_iter().enumerate() {
                let h = f.hands[1];
                let u = f.forearm_dir(1);
                let head = [h[0] + u[0] * 0.2, h[1] + u[1] * 0.2];
                front.push(Shape::Cap(
                    h,
                    [h[0] + u[0] * 0.11, h[1] + u[1] * 0.11],
                    0.014,
                    [30.0; 3],
                ));
                front.push(Shape::Ring(
                    head,
                    0.07,
                    0.02,
                    rc[(k + (j(3.0).abs() as usize)) % 3],
                ));
            }
            back.push(Shape::Disc(
                [0.15 + j(0.3), 0.65 + j(0.15)],
                0.035,
                [215.0, 235.0, 40.0],
            ));
            (a, b)
        }
        "toast" => {
            let d = 0.5 + j(0.05);
            let mut a = Figure::new(stand(1.0, &mut j), la, -d / 2.0, None);
            let mut b = Figure::new(stand(-1.0, &mut j), lb, d / 2.0, None);
            let y = 0.8 + j(0.04);
            a.reach(1, [-0.045, y]);
            b.reach(1, [0.045, y]);
            let drink: Rgb = if j(1.0) > 0.0 {
                [150.0, 20.0, 50.0]
            } else {
                [230.0, 170.0, 40.0]
            };
            for h in [a.hands[1], b.hands[1]] {
                front.push(rect(
                    h[0] - 0.03,
                    h[1] - 0.02,
                    h[0] + 0.03,
                    h[1] + 0.11,
                    [225.0, 235.0, 245.0],
                ));
                front.push(rect(
                    h[0] - 0.022,
                    h[1] - 0.01,
                    h[0] + 0.022,
                    h[1] + 0.06,
                    drink,
                ));
            }
            (a, b)
        }
        "salute" => {
            let d = 0.7 + j(0.06);
            la.shirt = [85.0, 100.0, 55.0];
            la.pants = [70.0, 80.0, 45.0];
            la.head = Headwear::Cap([50.0, 60.0, 35.0]);
            let mut a = Figure::new(
                Pose::stand(1.0).legs((-3.0, 0.0), (3.0, 0.0)),
                la,
                -d / 2.0,
                None,
            );
            let b = Figure::new(stand(-1.0, &mut j), lb, d / 2.0, None);
            let h = a.head;
            a.reach(1, [h[0] + 0.07, h[1] + 0.03]);
            (a, b)
        }
        "bow" => {
            let d = 0.72 + j(0.06);
            let a = Figure::new(
                Pose::stand(1.0)
                    .lean(72.0 + j(8.0))
                    .tilt(8.0)
                    .legs((-8.0, -3.0), (-4.0, 0.0))
                    .arms((-2.0, 0.0), (3.0, 2.0)),
                la,
                -d / 2.0,
                None,
            );
            let b = Figure::new(stand(-1.0, &mut j), lb, d / 2.0, None);
            (a, b)
        }
        "piggyback" => {
            let mut a = Figure::new(
                Pose::stand(1.0)
                    .lean(24.0 + j(4.0))
                    .legs((-12.0, -3.0), (14.0, 3.0)),
                la,
                0.0,
                None,
            );
            let an = a.neck;
            let mut b = Figure::new(
                Pose::stand(1.0).lean(28.0).legs((80.0, 10.0), (88.0, 15.0)),
                lb,
                a.hip[0] - 0.14,
                Some(a.hip[1] + 0.14),
            );
            b.reach(0, [an[0] + 0.05, an[1] - 0.03]);
            b.reach(1, [an[0] + 0.06, an[1] - 0.05]);
            let (k0, k1) = (b.knees[0], b.knees[1]);
            a.reach(0, [k0[0] - 0.02, k0[1] - 0.03]);
            a.reach(1, [k1[0] - 0.02, k1[1] - 0.03]);
            order = vec![1, 0];
            (a, b)
        }
        "chase" => {
            let run = |near: bool| {
                let (n, f) = if near {
                    ((45.0, 5.0), (-35.0, -85.0))
                } else {
                    ((-35.0, -85.0), (45.0, 5.0))
                };
                Pose::stand(1.0)
                    .lean(22.0)
                    .legs(f, n)
                    .arms((55.0, 130.0), (-45.0, 45.0))
            };
            let ax = -0.5 + j(0.05);
            let mut a = Figure::new(run(j(1.0) > 0.0 || jitter == 0.0), la, ax, None);
            let b = Figure::new(run(j(1.0) > 0.0).tilt(-30.0), lb, 0.45 + j(0.05), None);
            a.reach(1, [b.neck[0] - 0.12, b.neck[1] - 0.03]);
            (a, b)
        }
        "holdhands" => {
            let d = 0.36 + j(0.04);
            let mut a = Figure::new(Pose::front(), la, -d / 2.0, None);
            let mut b = Figure::new(Pose::front(), lb, d / 2.0, None);
            let y = 0.44 + j(0.03);
            a.reach(1, [0.0, y]);
            b.reach(0, [0.0, y]);
            front.push(Shape::Disc([0.0, y], 0.04, la.skin));
            (a, b)
        }
        _ => {
            // "umbrella"
            let d = 0.34 + j(0.03);
            let mut a = Figure::new(Pose::front(), la, -d / 2.0, None);
            let b = Figure::new(Pose::front(), lb, d / 2.0, None);
            let hand = [-0.04, 0.8 + j(0.03)];
            a.reach(1, hand);
            let top = [0.0, 1.12];
            back.push(Shape::Cap(hand, top, 0.014, [30.0; 3]));
            let cols: [Rgb; 4] = [
                [200.0, 30.0, 40.0],
                [30.0, 60.0, 190.0],
                [25.0; 3],
                [240.0, 200.0, 30.0],
            ];
            let col = cols[(j(4.0).abs() as usize) % 4];
            let r = 0.36;
            let pts: Vec<P> = (0..=12)
                .map(|k| {
                    let t = std::f32::consts::PI * k as f32 / 12.0;
                    [top[0] + r * t.cos(), top[1] - 0.07 + 0.18 * t.sin()]
                })
                .collect();
            front.push(Shape::Poly(pts, col));
            (a, b)
        }
    };
    Scene {
        figs: vec![a, b],
        order,
        back,
        front,
    }
}

/// The interaction-free scene of a single person (stage 6 drops such items).
pub fn solo<R: Rng>(rng: &mut R, look: Look) -> Scene {
    let raised = rng.random_bool(0.5);
    let pose = if raised {
        Pose::stand(1.0).arms((10.0, 5.0), (100.0, 125.0))
    } else {
        Pose::front()
    };
    let a = Figure::new(pose, look, 0.0, None);
    let mut front = Vec::new();
    if rng.random_bool(0.5) {
        front.push(Shape::Poly(
            vec![[0.12, 0.0], [0.36, 0.0], [0.33, 0.52], [0.15, 0.52]],
            WOOD,
        ));
    }
    Scene {
        figs: vec![a],
        order: vec![0],
        back: Vec::new(),
        front,
    }
}
