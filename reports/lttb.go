package reports

import "math"

// point is one point of a series: X in seconds, Y in the series' unit.
type point struct{ X, Y float64 }

// lttb downsamples pts (sorted by X) to at most n points with the
// Largest-Triangle-Three-Buckets method (Steinarsson, 2013): it keeps the
// first and last points and, from each of n-2 buckets, the point forming
// the largest triangle with the point kept before it and the average of the
// next bucket, so that peaks survive. pts is returned as is when it is
// already short enough or n < 3.
func lttb(pts []point, n int) []point {
	if n < 3 || len(pts) <= n {
		return pts
	}
	out := make([]point, 0, n)
	out = append(out, pts[0])
	every := float64(len(pts)-2) / float64(n-2)
	a := 0
	for i := 0; i < n-2; i++ {
		// The next bucket's average.
		lo := int(float64(i+1)*every) + 1
		hi := int(float64(i+2)*every) + 1
		if hi > len(pts) {
			hi = len(pts)
		}
		var ax, ay float64
		for _, p := range pts[lo:hi] {
			ax += p.X
			ay += p.Y
		}
		if cnt := float64(hi - lo); cnt > 0 {
			ax /= cnt
			ay /= cnt
		}
		// This bucket.
		blo := int(float64(i)*every) + 1
		bhi := lo
		best, bestArea := blo, -1.0
		for j := blo; j < bhi; j++ {
			area := math.Abs((pts[a].X-ax)*(pts[j].Y-pts[a].Y) - (pts[a].X-pts[j].X)*(ay-pts[a].Y))
			if area > bestArea {
				best, bestArea = j, area
			}
		}
		out = append(out, pts[best])
		a = best
	}
	return append(out, pts[len(pts)-1])
}
