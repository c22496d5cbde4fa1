"""The Moré–Thuente line search (the method of MINPACK-2's dcsrch, as L-BFGS-B uses it).

Along x_k + a d it looks for a step a that satisfies the strong Wolfe conditions, keeping an
interval [stx, sty] (or an extrapolation range) that contains such a step: each trial
step is a safeguarded cubic or quadratic interpolation of the values and slopes seen.
While no trial has had psi(a) = f(a) - f(0) - c1 a f'(0) <= 0 with f'(a) >= 0 it works on
psi, whose minimisers satisfy the sufficient-decrease condition.

A trial where f or the slope is not finite (an overflowing network) is not an error here:
it becomes the far end of the interval and the next trial lies halfway back to stx.
"""

from libc.math cimport INFINITY, fabs, isfinite, sqrt

cdef double STEP_MAX = 1e10     # L-BFGS-B's bound on the step of an unbounded problem
cdef double XTOL = 0.1          # dcsrch's relative tolerance on the bracket
cdef double EXTRAPOLATE_MIN = 1.1, EXTRAPOLATE_MAX = 4.0


cdef enum:
    SEARCH_EVALUATE = 0
    SEARCH_CONVERGED = 1
    SEARCH_WARNING = 2


cdef struct Search:
    # Steps a >= 0 along the direction; values f(a) and slopes f'(a) = g(x + a d)'d.
    double stx, fx, gx      # the best step so far and its value and slope
    double sty, fy, gy      # the other end of the interval
    bint y_known            # False when f was not finite at sty (fy, gy unknown)
    bint bracketed          # a minimiser lies between stx and sty
    bint second_stage       # some step had psi <= 0 and f' >= 0: minimise f, not psi
    double lower, upper     # the next trial lies in [lower, upper]
    double width, width_before
    double f0, decrease_slope, curvature_bound, step_max


cdef void search_start(Search* s, double f0, double g0, double step, double c1,
                       double c2) noexcept nogil:
    s.stx, s.fx, s.gx = 0.0, f0, g0
    s.sty, s.fy, s.gy = 0.0, f0, g0
    s.y_known, s.bracketed, s.second_stage = True, False, False
    s.lower, s.upper = 0.0, step + EXTRAPOLATE_MAX * step
    s.step_max = STEP_MAX
    s.width, s.width_before = STEP_MAX, 2 * STEP_MAX
    s.f0, s.decrease_slope, s.curvature_bound = f0, c1 * g0, -c2 * g0


cdef double cubic_minimizer(double a, double fa, double da, double b, double fb,
                            double db) noexcept nogil:
    """Where the cubic through (a, fa, da) and (b, fb, db) has its minimum (scaled by the
    largest term so that the discriminant cannot overflow)."""
    cdef double theta = 3 * (fa - fb) / (b - a) + da + db
    cdef double scale = max(fabs(theta), max(fabs(da), fabs(db)))
    cdef double gamma = scale * sqrt(max(0.0, (theta / scale) ** 2 - (da / scale) * (db / scale)))
    if b < a:
        gamma = -gamma
    return a + ((gamma - da) + theta) / (((gamma - da) + gamma) + db) * (b - a)


cdef double next_trial(Search* s, double stp, double fp, double dp, double shift,
                       bint* moved) noexcept nogil:
    """The safeguarded step of Moré and Thuente from the trial (stp, fp, dp); updates the
    interval. Values and slopes are compared as f(a) - a·shift and f'(a) - shift (shift =
    c1 f'(0) while minimising psi, else 0). Sets `moved` when the trial became stx."""
    cdef double fx = s.fx - s.stx * shift, dx = s.gx - shift
    cdef double fpm = fp - stp * shift, dpm = dp - shift
    cdef double fy = s.fy - s.sty * shift, dy = s.gy - shift
    cdef double stpc, stpq, stpf, theta, scale, gamma, r
    cdef bint opposite = (dpm > 0 and dx < 0) or (dpm < 0 and dx > 0)
    if fpm > fx:
        # Higher value: a minimiser lies between stx and stp. Cubic step, pulled halfway
        # to the quadratic one when that is closer to stx.
        stpc = cubic_minimizer(s.stx, fx, dx, stp, fpm, dpm)
        stpq = s.stx + dx / ((fx - fpm) / (stp - s.stx) + dx) / 2 * (stp - s.stx)
        stpf = stpc if fabs(stpc - s.stx) <= fabs(stpq - s.stx) else stpc + (stpq - stpc) / 2
        s.bracketed = True
    elif opposite:
        # Lower value, slope of the other sign: bracketed; the step farther from stp.
        stpc = cubic_minimizer(stp, fpm, dpm, s.stx, fx, dx)
        stpq = stp + dpm / (dpm - dx) * (s.stx - stp)
        stpf = stpc if fabs(stpc - stp) > fabs(stpq - stp) else stpq
        s.bracketed = True
    elif fabs(dpm) < fabs(dx):
        # Lower value, same sign, the slope flattens: the cubic may have no minimum beyond
        # stp, then extrapolate to the end of the interval.
        theta = 3 * (fx - fpm) / (stp - s.stx) + dx + dpm
        scale = max(fabs(theta), max(fabs(dx), fabs(dpm)))
        gamma = scale * sqrt(max(0.0, (theta / scale) ** 2 - (dx / scale) * (dpm / scale)))
        if stp > s.stx:
            gamma = -gamma
        r = ((gamma - dpm) + theta) / ((gamma + (dx - dpm)) + gamma)
        if r < 0 and gamma != 0:
            stpc = stp + r * (s.stx - stp)
        else:
            stpc = s.upper if stp > s.stx else s.lower
        stpq = stp + dpm / (dpm - dx) * (s.stx - stp)
        if s.bracketed:
            stpf = stpc if fabs(stpc - stp) < fabs(stpq - stp) else stpq
            if stp > s.stx:
                stpf = min(stp + 0.66 * (s.sty - stp), stpf)
            else:
                stpf = max(stp + 0.66 * (s.sty - stp), stpf)
        else:
            stpf = stpc if fabs(stpc - stp) > fabs(stpq - stp) else stpq
            stpf = min(max(stpf, s.lower), s.upper)
    elif s.bracketed:
        # Lower value, same sign, the slope does not flatten: toward sty, by the cubic
        # through stp and sty, or halfway when f was not finite at sty.
        if s.y_known:
            stpf = cubic_minimizer(stp, fpm, dpm, s.sty, fy, dy)
        else:
            stpf = stp + 0.5 * (s.sty - stp)
    else:
        stpf = s.upper if stp > s.stx else s.lower
    moved[0] = not fpm > fx
    if fpm > fx:
        s.sty, s.fy, s.gy, s.y_known = stp, fp, dp, True
    else:
        if opposite:
            s.sty, s.fy, s.gy, s.y_known = s.stx, s.fx, s.gx, True
        s.stx, s.fx, s.gx = stp, fp, dp
    return stpf


cdef double safeguard(Search* s, double stp) noexcept nogil:
    """Bisect when the interval did not shrink enough, set the next interval, and fall back
    to stx when the step left it (dcsrch's rules)."""
    if s.bracketed:
        if fabs(s.sty - s.stx) >= 0.66 * s.width_before:
            stp = s.stx + 0.5 * (s.sty - s.stx)
        s.width_before = s.width
        s.width = fabs(s.sty - s.stx)
        s.lower, s.upper = min(s.stx, s.sty), max(s.stx, s.sty)
    else:
        s.lower = stp + EXTRAPOLATE_MIN * (stp - s.stx)
        s.upper = stp + EXTRAPOLATE_MAX * (stp - s.stx)
    stp = min(max(stp, 0.0), s.step_max)
    if s.bracketed and (stp <= s.lower or stp >= s.upper
                        or s.upper - s.lower <= XTOL * s.upper):
        stp = s.stx
    return stp


cdef int search_update(Search* s, double* step, double f, double g, bint* moved) noexcept nogil:
    """Judge the trial step[0] with value f and slope g; on SEARCH_EVALUATE, step[0] is the
    next trial."""
    cdef double stp = step[0], sufficient = s.f0 + stp * s.decrease_slope
    moved[0] = False
    if f <= sufficient and g >= 0:
        s.second_stage = True
    if f <= sufficient and fabs(g) <= s.curvature_bound:
        return SEARCH_CONVERGED
    if s.bracketed and (stp <= s.lower or stp >= s.upper
                        or s.upper - s.lower <= XTOL * s.upper):
        return SEARCH_WARNING    # rounding errors, or the interval is too small
    if stp == s.step_max and f <= sufficient and g <= s.decrease_slope:
        return SEARCH_WARNING
    if not s.second_stage and f <= s.fx and f > sufficient:
        # Decrease, but not enough: minimise psi(a) = f(a) - f(0) - c1 a f'(0) instead.
        stp = next_trial(s, stp, f, g, s.decrease_slope, moved)
    else:
        stp = next_trial(s, stp, f, g, 0.0, moved)
    step[0] = safeguard(s, stp)
    return SEARCH_EVALUATE


cdef double search_reject(Search* s, double stp) noexcept nogil:
    """A trial where f or f' was not finite: it bounds the interval; try halfway to stx."""
    s.bracketed = True
    s.sty, s.fy, s.gy, s.y_known = stp, 0.0, 0.0, False
    return safeguard(s, s.stx + 0.5 * (stp - s.stx))


cdef int line_search(ObjectiveFn objective, void* context, Points* p, Py_ssize_t n,
                     double f0, double g0, double step, double c1, double c2,
                     Py_ssize_t max_evaluations, double* f_new,
                     Py_ssize_t* evaluations) noexcept nogil:
    """Search x_k + a d (f0 = f(x_k), g0 = g_k'd < 0) from a = step for a strong Wolfe point:
    f(a) <= f0 + c1 a g0 and |f'(a)| <= c2 |g0|. Without one within max_evaluations, or
    when the interval becomes too small (dcsrch's warnings), the lowest point seen is
    accepted when it is below f0."""
    cdef Search s
    cdef Py_ssize_t _
    cdef double f, slope, f_trial = INFINITY, f_best = INFINITY
    cdef int status = SEARCH_WARNING
    cdef bint moved
    search_start(&s, f0, g0, step, c1, c2)
    for _ in range(max_evaluations):
        trial_point(p.xt, p.x, step, p.d, n)
        evaluations[0] += 1
        if objective(context, p.xt, &f, p.gt) != 0:
            return LINE_ABORTED
        slope = dot(p.gt, p.d, n)
        if not (isfinite(f) and isfinite(slope)):
            f_trial = INFINITY
            step = search_reject(&s, step)
            continue
        f_trial = f
        status = search_update(&s, &step, f, slope, &moved)
        if status != SEARCH_EVALUATE:
            break
        if moved:   # keep the best point: the trial buffers take the old best's place
            swap(&p.xt, &p.xb)
            swap(&p.gt, &p.gb)
            f_trial, f_best = f_best, f_trial
    if status == SEARCH_CONVERGED:
        f_new[0] = f
        return LINE_ACCEPTED
    # No Wolfe point within max_line_search evaluations, or dcsrch's warnings.
    if f_best < f_trial:
        swap(&p.xt, &p.xb)
        swap(&p.gt, &p.gb)
        f_trial = f_best
    if f_trial < f0:
        f_new[0] = f_trial
        return LINE_ACCEPTED
    return LINE_FAILED
