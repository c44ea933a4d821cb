//! Articulated stick figures in the "pair frame": units of a standing figure's height, y
//! up, ground at y = 0. Limb angles are in degrees from straight down, positive towards
//! the way the figure faces (90 = horizontal forward, 180 = straight up); the torso angle
//! is from upright, positive leaning forward. Arms can also be placed by two-link inverse
//! kinematics, so poses are written as "this hand goes there" (on the partner's back, at
//! the handshake point) rather than as angles that only fit one distance.

use super::raster::{Canvas, P, Rgb};

pub const THIGH: f32 = 0.24;
pub const SHIN: f32 = 0.23;
pub const TORSO: f32 = 0.30;
pub const NECK: f32 = 0.09;
pub const HEAD_R: f32 = 0.085;
pub const UPPER_ARM: f32 = 0.17;
pub const FOREARM: f32 = 0.16;
pub const LIMB_R: f32 = 0.032;
pub const TORSO_R: f32 = 0.058;

#[derive(Clone, Copy, Debug)]
pub enum Headwear {
    None,
    Cap(Rgb),
    Mask,
}

#[derive(Clone, Copy, Debug)]
pub struct Look {
    pub skin: Rgb,
    pub shirt: Rgb,
    pub pants: Rgb,
    pub hair: Rgb,
    pub head: Headwear,
    pub dress: bool,
}

/// A figure's joint angles; where it stands is given when it is built.
#[derive(Clone, Copy, Debug)]
pub struct Pose {
    pub facing: f32,
    /// Seen from the front: arms and legs spread to either side instead of forward/back.
    pub front: bool,
    pub torso: f32,
    pub head_tilt: f32,
    /// (thigh, shin) for the far leg (0) and the near leg (1).
    pub legs: [(f32, f32); 2],
    /// (upper arm, forearm) for the far arm (0) and the near arm (1).
    pub arms: [(f32, f32); 2],
}

impl Pose {
    pub fn stand(facing: f32) -> Pose {
        Pose {
            facing,
            front: false,
            torso: 0.0,
            head_tilt: 0.0,
            legs: [(-6.0, -2.0), (7.0, 2.0)],
            arms: [(-8.0, 0.0), (8.0, 6.0)],
        }
    }

    pub fn front() -> Pose {
        Pose {
            facing: 1.0,
            front: true,
            torso: 0.0,
            head_tilt: 0.0,
            legs: [(9.0, 3.0), (9.0, 3.0)],
            arms: [(14.0, 6.0), (14.0, 6.0)],
        }
    }

    pub fn lean(mut self, t: f32) -> Pose {
        self.torso = t;
        self
    }
    pub fn legs(mut self, far: (f32, f32), near: (f32, f32)) -> Pose {
        self.legs = [far, near];
        self
    }
    pub fn arms(mut self, far: (f32, f32), near: (f32, f32)) -> Pose {
        self.arms = [far, near];
        self
    }
    pub fn tilt(mut self, t: f32) -> Pose {
        self.head_tilt = t;
        self
    }
}

#[derive(Clone, Debug)]
pub struct Figure {
    pub pose: Pose,
    pub look: Look,
    pub hip: P,
    pub neck: P,
    pub head: P,
    pub knees: [P; 2],
    pub feet: [P; 2],
    pub elbows: [P; 2],
    pub hands: [P; 2],
}

fn add(a: P, b: P) -> P {
    [a[0] + b[0], a[1] + b[1]]
}
fn scale(a: P, k: f32) -> P {
    [a[0] * k, a[1] * k]
}

/// A limb's unit direction: 0° down, 90° towards `sign`, 180° up.
fn limb_dir(deg: f32, sign: f32) -> P {
    let r = deg.to_radians();
    [sign * r.sin(), -r.cos()]
}

impl Figure {
    fn side_sign(&self, i: usize) -> f32 {
        if self.pose.front {
            if i == 0 { -1.0 } else { 1.0 }
        } else {
            self.pose.facing
        }
    }

    /// Builds the figure with its hip at `x`; `hip_y = None` stands it on the ground (its
    /// lowest leg joint, or its hip when sitting on the floor, at y = 0).
    pub fn new(pose: Pose, look: Look, x: f32, hip_y: Option<f32>) -> Figure {
        let mut f = Figure {
            pose,
            look,
            hip: [x, 0.0],
            neck: [0.0; 2],
            head: [0.0; 2],
            knees: [[0.0; 2]; 2],
            feet: [[0.0; 2]; 2],
            elbows: [[0.0; 2]; 2],
            hands: [[0.0; 2]; 2],
        };
        for i in 0..2 {
            let s = f.side_sign(i);
            let (a, b) = pose.legs[i];
            f.knees[i] = add(f.hip, scale(limb_dir(a, s), THIGH));
            f.feet[i] = add(f.knees[i], scale(limb_dir(b, s), SHIN));
        }
        let low = match hip_y {
            Some(y) => -y,
            None => f
                .knees
                .iter()
                .chain(f.feet.iter())
                .map(|p| p[1])
                .fold(-TORSO_R, f32::min),
        };
        let dy = -low;
        f.hip[1] += dy;
        for p in f.knees.iter_mut().chain(f.feet.iter_mut()) {
            p[1] += dy;
        }
        let t = pose.torso.to_radians();
        let fs = if pose.front { 1.0 } else { pose.facing };
        f.neck = add(f.hip, [fs * t.sin() * TORSO, t.cos() * TORSO]);
        let th = (pose.torso + pose.head_tilt).to_radians();
        f.head = add(f.neck, [fs * th.sin() * NECK, th.cos() * NECK]);
        for i in 0..2 {
            let s = f.side_sign(i);
            let (a, b) = pose.arms[i];
            f.elbows[i] = add(f.shoulder(), scale(limb_dir(a, s), UPPER_ARM));
            f.hands[i] = add(f.elbows[i], scale(limb_dir(b, s), FOREARM));
        }
        f
    }

    pub fn shoulder(&self) -> P {
        // A little below the neck, along the torso.
        let d = [self.neck[0] - self.hip[0], self.neck[1] - self.hip[1]];
        add(self.neck, scale(d, -0.08))
    }

    /// Moves hand `i` to `target` (or as near as the arm reaches), with the elbow on the
    /// lower of the two possible sides.
    pub fn reach(&mut self, i: usize, target: P) {
        let s = self.shoulder();
        let (dx, dy) = (target[0] - s[0], target[1] - s[1]);
        let dist = (dx * dx + dy * dy).sqrt().max(1e-6);
        let d = dist.clamp(
            (UPPER_ARM - FOREARM).abs() + 1e-3,
            UPPER_ARM + FOREARM - 1e-3,
        );
        let u = [dx / dist, dy / dist];
        let cos_a = ((UPPER_ARM * UPPER_ARM + d * d - FOREARM * FOREARM) / (2.0 * UPPER_ARM * d))
            .clamp(-1.0, 1.0);
        let a = cos_a.acos();
        let rot = |v: P, ang: f32| {
            [
                v[0] * ang.cos() - v[1] * ang.sin(),
                v[0] * ang.sin() + v[1] * ang.cos(),
            ]
        };
        let e1 = add(s, scale(rot(u, a), UPPER_ARM));
        let e2 = add(s, scale(rot(u, -a), UPPER_ARM));
        self.elbows[i] = if e1[1] <= e2[1] { e1 } else { e2 };
        self.hands[i] = add(s, scale(u, d));
    }

    /// Direction of forearm `i` (elbow to hand), unit length.
    pub fn forearm_dir(&self, i: usize) -> P {
        let (e, h) = (self.elbows[i], self.hands[i]);
        let (dx, dy) = (h[0] - e[0], h[1] - e[1]);
        let n = (dx * dx + dy * dy).sqrt().max(1e-6);
        [dx / n, dy / n]
    }

    /// Every point the figure's outline reaches, with its radius (for boxes and fitting).
    pub fn extent(&self) -> Vec<(P, f32)> {
        let mut v = vec![
            (self.hip, TORSO_R),
            (self.neck, TORSO_R),
            (self.head, HEAD_R + 0.02),
        ];
        for i in 0..2 {
            v.extend([
                (self.knees[i], LIMB_R),
                (self.feet[i], LIMB_R),
                (self.elbows[i], LIMB_R),
                (self.hands[i], LIMB_R),
            ]);
        }
        if self.look.dress {
            v.push(([self.hip[0], self.hip[1] - 0.3], 0.15));
        }
        v
    }

    pub fn draw(&self, c: &mut Canvas, xf: &Xf) {
        let l = &self.look;
        let dark = |c: Rgb| c.map(|v| v * 0.72);
        let lr = xf.r(LIMB_R);
        let leg = |c: &mut Canvas, i: usize, col: Rgb| {
            c.capsule(xf.p(self.hip), xf.p(self.knees[i]), lr * 1.1, col);
            c.capsule(xf.p(self.knees[i]), xf.p(self.feet[i]), lr, col);
        };
        let arm = |c: &mut Canvas, i: usize, col: Rgb, skin: Rgb| {
            let sh = xf.p(self.shoulder());
            c.capsule(sh, xf.p(self.elbows[i]), lr, col);
            c.capsule(xf.p(self.elbows[i]), xf.p(self.hands[i]), lr * 0.95, col);
            c.disc(xf.p(self.hands[i]), lr * 1.05, skin);
        };
        let (far_leg, far_arm) = if self.pose.front {
            (l.pants, l.shirt)
        } else {
            (dark(l.pants), dark(l.shirt))
        };
        let far_skin = if self.pose.front {
            l.skin
        } else {
            dark(l.skin)
        };
        leg(c, 0, far_leg);
        if !self.pose.front {
            arm(c, 0, far_arm, far_skin);
        }
        leg(c, 1, l.pants);
        if l.dress {
            let h = self.hip;
            let pts = [
                [h[0] - 0.04, h[1] + 0.08],
                [h[0] + 0.04, h[1] + 0.08],
                [h[0] + 0.15, h[1] - 0.3],
                [h[0] - 0.15, h[1] - 0.3],
            ];
            c.poly(&pts.map(|p| xf.p(p)), l.shirt);
        }
        c.capsule(xf.p(self.hip), xf.p(self.neck), xf.r(TORSO_R), l.shirt);
        let head = xf.p(self.head);
        let hr = xf.r(HEAD_R);
        match l.head {
            Headwear::Mask => c.disc(head, hr, [55.0, 55.0, 60.0]),
            _ => {
                c.disc(head, hr, l.skin);
                // Hair on the crown and the back of the head shows which way the figure faces.
                let back = if self.pose.front {
                    0.0
                } else {
                    -self.pose.facing * 0.35
                };
                let hp = xf.p([self.head[0] + back * HEAD_R, self.head[1] + 0.45 * HEAD_R]);
                c.disc(hp, hr * 0.72, l.hair);
            }
        }
        if let Headwear::Cap(col) = l.head {
            let hd = self.head;
            let fwd = if self.pose.front {
                0.0
            } else {
                self.pose.facing
            };
            c.poly(
                &[
                    [hd[0] - HEAD_R, hd[1] + 0.3 * HEAD_R],
                    [hd[0] + HEAD_R, hd[1] + 0.3 * HEAD_R],
                    [hd[0] + 0.8 * HEAD_R, hd[1] + 1.3 * HEAD_R],
                    [hd[0] - 0.8 * HEAD_R, hd[1] + 1.3 * HEAD_R],
                ]
                .map(|p| xf.p(p)),
                col,
            );
            c.capsule(
                xf.p([hd[0], hd[1] + 0.35 * HEAD_R]),
                xf.p([hd[0] + fwd * 1.6 * HEAD_R, hd[1] + 0.3 * HEAD_R]),
                xf.r(0.018),
                col,
            );
        }
        if self.pose.front {
            arm(c, 0, far_arm, far_skin);
        }
        arm(c, 1, l.shirt, l.skin);
    }
}

/// Pair frame → pixels: `m` mirrors, `s` is the figure height in pixels.
#[derive(Clone, Copy, Debug)]
pub struct Xf {
    pub cx: f32,
    pub gy: f32,
    pub s: f32,
    pub m: f32,
}

impl Xf {
    pub fn p(&self, q: P) -> P {
        [self.cx + self.s * self.m * q[0], self.gy - self.s * q[1]]
    }
    pub fn r(&self, r: f32) -> f32 {
        self.s * r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look() -> Look {
        Look {
            skin: [200.0; 3],
            shirt: [200.0, 0.0, 0.0],
            pants: [0.0, 0.0, 200.0],
            hair: [20.0; 3],
            head: Headwear::None,
            dress: false,
        }
    }

    #[test]
    fn standing_figure_is_about_one_unit_tall_and_grounded() {
        let f = Figure::new(Pose::stand(1.0), look(), 0.0, None);
        let low = f.feet.iter().map(|p| p[1]).fold(f32::MAX, f32::min);
        assert!(low.abs() < 1e-4);
        assert!((f.head[1] + HEAD_R - 0.93).abs() < 0.05, "{:?}", f.head);
    }

    #[test]
    fn reach_puts_the_hand_on_a_reachable_target() {
        let mut f = Figure::new(Pose::stand(1.0), look(), 0.0, None);
        let t = [0.2, 0.6];
        f.reach(1, t);
        assert!((f.hands[1][0] - t[0]).abs() < 1e-4 && (f.hands[1][1] - t[1]).abs() < 1e-4);
        let s = f.shoulder();
        let l1 = ((f.elbows[1][0] - s[0]).powi(2) + (f.elbows[1][1] - s[1]).powi(2)).sqrt();
        assert!((l1 - UPPER_ARM).abs() < 1e-4);
    }
}
