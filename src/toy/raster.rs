//! A tiny anti-aliased rasteriser: capsules, discs, rings and convex polygons on an RGB
//! canvas. Coverage is estimated from the distance of each pixel centre to the shape's
//! edge (one pixel of ramp), which is cheap and smooth enough at 64×64.

pub type Rgb = [f32; 3];
pub type P = [f32; 2];

pub struct Canvas {
    pub w: usize,
    pub h: usize,
    pub px: Vec<Rgb>,
}

fn clamp01(x: f32) -> f32 {
    x.clamp(0.0, 1.0)
}

fn seg_dist(p: P, a: P, b: P) -> f32 {
    let (abx, aby) = (b[0] - a[0], b[1] - a[1]);
    let (apx, apy) = (p[0] - a[0], p[1] - a[1]);
    let len2 = abx * abx + aby * aby;
    let t = if len2 > 1e-12 {
        clamp01((apx * abx + apy * aby) / len2)
    } else {
        0.0
    };
    let (dx, dy) = (apx - t * abx, apy - t * aby);
    (dx * dx + dy * dy).sqrt()
}

impl Canvas {
    pub fn new(w: usize, h: usize, fill: Rgb) -> Self {
        Canvas {
            w,
            h,
            px: vec![fill; w * h],
        }
    }

    fn blend(&mut self, x: usize, y: usize, c: Rgb, a: f32) {
        if a <= 0.0 {
            return;
        }
        let p = &mut self.px[y * self.w + x];
        for k in 0..3 {
            p[k] += (c[k] - p[k]) * a;
        }
    }

    /// Pixel index ranges covering `[x0, x1] × [y0, y1]` (inclusive, in pixel units).
    fn span(&self, x0: f32, x1: f32, y0: f32, y1: f32) -> (usize, usize, usize, usize) {
        let cx = |v: f32, n: usize| (v.floor().max(0.0) as usize).min(n);
        (
            cx(x0 - 1.0, self.w),
            cx(x1 + 2.0, self.w),
            cx(y0 - 1.0, self.h),
            cx(y1 + 2.0, self.h),
        )
    }

    pub fn capsule(&mut self, a: P, b: P, r: f32, c: Rgb) {
        let (x0, x1, y0, y1) = self.span(
            a[0].min(b[0]) - r,
            a[0].max(b[0]) + r,
            a[1].min(b[1]) - r,
            a[1].max(b[1]) + r,
        );
        for y in y0..y1 {
            for x in x0..x1 {
                let d = seg_dist([x as f32 + 0.5, y as f32 + 0.5], a, b);
                self.blend(x, y, c, clamp01(r + 0.5 - d));
            }
        }
    }

    pub fn disc(&mut self, o: P, r: f32, c: Rgb) {
        self.capsule(o, o, r, c);
    }

    pub fn ring(&mut self, o: P, r: f32, width: f32, c: Rgb) {
        let e = r + width;
        let (x0, x1, y0, y1) = self.span(o[0] - e, o[0] + e, o[1] - e, o[1] + e);
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = (x as f32 + 0.5 - o[0], y as f32 + 0.5 - o[1]);
                let d = ((dx * dx + dy * dy).sqrt() - r).abs();
                self.blend(x, y, c, clamp01(width * 0.5 + 0.5 - d));
            }
        }
    }

    /// A convex polygon, vertices in either winding order.
    pub fn poly(&mut self, pts: &[P], c: Rgb) {
        if pts.len() < 3 {
            return;
        }
        let area: f32 = (0..pts.len())
            .map(|i| {
                let (p, q) = (pts[i], pts[(i + 1) % pts.len()]);
                p[0] * q[1] - q[0] * p[1]
            })
            .sum();
        let sgn = if area >= 0.0 { 1.0 } else { -1.0 };
        let edges: Vec<(P, f32, f32)> = (0..pts.len())
            .filter_map(|i| {
                let (p, q) = (pts[i], pts[(i + 1) % pts.len()]);
                let (ex, ey) = (q[0] - p[0], q[1] - p[1]);
                let len = (ex * ex + ey * ey).sqrt();
                // Inward normal for the polygon's winding.
                (len > 1e-9).then(|| (p, -ey * sgn / len, ex * sgn / len))
            })
            .collect();
        let fold =
            |f: fn(f32, f32) -> f32, k: usize, init: f32| pts.iter().map(|p| p[k]).fold(init, f);
        let (x0, x1, y0, y1) = self.span(
            fold(f32::min, 0, f32::MAX),
            fold(f32::max, 0, f32::MIN),
            fold(f32::min, 1, f32::MAX),
            fold(f32::max, 1, f32::MIN),
        );
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                let inside = edges
                    .iter()
                    .map(|(p, nx, ny)| (px - p[0]) * nx + (py - p[1]) * ny)
                    .fold(f32::MAX, f32::min);
                self.blend(x, y, c, clamp01(0.5 + inside));
            }
        }
    }

    pub fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, c: Rgb) {
        self.poly(&[[x0, y0], [x1, y0], [x1, y1], [x0, y1]], c);
    }

    pub fn to_rgb8(&self) -> Vec<u8> {
        self.px
            .iter()
            .flat_map(|p| p.map(|v| v.round().clamp(0.0, 255.0) as u8))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_cover_their_inside_and_not_far_outside() {
        let mut c = Canvas::new(16, 16, [0.0; 3]);
        c.disc([8.0, 8.0], 3.0, [255.0; 3]);
        assert_eq!(c.px[8 * 16 + 8], [255.0; 3]);
        assert_eq!(c.px[0], [0.0; 3]);
        let mut c = Canvas::new(16, 16, [0.0; 3]);
        c.poly(
            &[[2.0, 2.0], [2.0, 10.0], [10.0, 10.0], [10.0, 2.0]],
            [100.0; 3],
        );
        assert_eq!(c.px[5 * 16 + 5], [100.0; 3]);
        assert_eq!(c.px[12 * 16 + 12], [0.0; 3]);
    }
}
