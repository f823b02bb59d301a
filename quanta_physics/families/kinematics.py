"""Kinematics: motion described without its causes (speeds, distances, times, angles)."""

# Physics text uses the multiplication sign, the minus sign and Greek letters on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

import random

from quanta_physics.families.base import Calc, Family, Topic, Worked, num


def _final_velocity(rng: random.Random) -> Worked:
    u, a, t = rng.randint(0, 20), round(rng.uniform(0.5, 5.0), 1), rng.randint(2, 12)
    v = Calc(f"{u} + {a}*{t}")
    return Worked({"u": u, "a": num(a), "t": t},
                  ("Use v = u + at.", f"v = {v} m/s."), v.value, "m/s")


def _final_velocity_kmh(rng: random.Random) -> Worked:
    u_kmh, a, t = rng.choice([18, 36, 54, 72, 90]), round(rng.uniform(0.5, 4.0), 1), \
        rng.randint(2, 10)
    v = Calc(f"{u_kmh}/3.6 + {a}*{t}")
    return Worked({"u": u_kmh, "a": num(a), "t": t},
                  ("Use v = u + at, with u in m/s (divide km/h by 3.6).", f"v = {v} m/s."),
                  v.value, "m/s")


def _displacement(rng: random.Random) -> Worked:
    u, a, t = rng.randint(0, 15), round(rng.uniform(0.5, 4.0), 1), rng.randint(2, 12)
    s = Calc(f"{u}*{t} + 0.5*{a}*{t}**2")
    return Worked({"u": u, "a": num(a), "t": t},
                  ("Use s = ut + (1/2)at².", f"s = {s} m."), s.value, "m")


def _distance_from_rest_minutes(rng: random.Random) -> Worked:
    a, t_min = round(rng.uniform(0.1, 0.3), 2), rng.choice([1, 1.5, 2, 2.5, 3])
    s = Calc(f"0.5*{a}*({t_min}*60)**2/1000")
    return Worked({"a": num(a), "t": num(t_min)},
                  ("From rest, s = (1/2)at², with t in seconds (minutes × 60); divide metres "
                   "by 1000 for km.", f"s = {s} km."), s.value, "km")


def _projectile_range(rng: random.Random) -> Worked:
    v, angle = rng.randint(8, 40), rng.choice([15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 70])
    r = Calc(f"{v}**2*sin(radians(2*{angle}))/9.8")
    return Worked({"v": v, "angle": angle},
                  ("On level ground the range is R = v² sin(2θ) / g.", f"R = {r} m."),
                  r.value, "m")


def _free_fall(rng: random.Random) -> Worked:
    t = round(rng.uniform(0.5, 5.0), 1)
    d = Calc(f"0.5*9.8*{t}**2")
    return Worked({"t": num(t)}, ("Dropped from rest: d = (1/2)gt².", f"d = {d} m."),
                  d.value, "m")


def _fall_time_cm(rng: random.Random) -> Worked:
    h_cm = rng.randint(40, 250)
    t = Calc(f"sqrt(2*{h_cm}/100/9.8)")
    return Worked({"h": h_cm},
                  ("From h = (1/2)gt², t = √(2h/g), with h in metres (cm ÷ 100).",
                   f"t = {t} s."), t.value, "s")


def _max_height_throw(rng: random.Random) -> Worked:
    u = round(rng.uniform(4.0, 25.0), 1)
    h = Calc(f"{u}**2/(2*9.8)")
    return Worked({"u": num(u)},
                  ("At the top v = 0, so v² = u² − 2gh gives h = u²/(2g).", f"h = {h} m."),
                  h.value, "m")


def _horizontal_launch(rng: random.Random) -> Worked:
    h, v = rng.randint(5, 120), round(rng.uniform(2.0, 25.0), 1)
    t = Calc(f"sqrt(2*{h}/9.8)")
    x = Calc(f"{v}*{num(t.value, 4)}")
    return Worked({"h": h, "v": num(v)},
                  ("The fall time follows from h = (1/2)gt², so t = √(2h/g); the horizontal "
                   "speed stays constant, so x = vt.", f"t = {t} s.", f"x = {x} m."),
                  x.value, "m")


def _stopping_distance_kmh(rng: random.Random) -> Worked:
    v_kmh, tr = rng.choice([30, 40, 50, 60, 70, 80, 90, 100, 110, 120]), \
        round(rng.uniform(0.5, 1.5), 1)
    a = round(rng.uniform(4.0, 8.0), 1)
    think = Calc(f"{v_kmh}/3.6*{tr}")
    brake = Calc(f"({v_kmh}/3.6)**2/(2*{a})")
    total = Calc(f"{num(think.value, 4)} + {num(brake.value, 4)}")
    return Worked({"v": v_kmh, "tr": num(tr), "a": num(a)},
                  ("Stopping distance = reaction distance vt + braking distance v²/(2a), with "
                   "v in m/s (km/h ÷ 3.6).", f"Reaction distance = {think} m.",
                   f"Braking distance = {brake} m.", f"Total = {total} m."),
                  total.value, "m")


def _average_speed_two_legs(rng: random.Random) -> Worked:
    t1, t2 = rng.randint(5, 45), rng.randint(5, 45)
    d1, d2 = round(rng.uniform(20, 100) * t1 / 60), round(rng.uniform(20, 100) * t2 / 60)
    v = Calc(f"({d1} + {d2})/(({t1} + {t2})/60)")
    return Worked({"d1": d1, "t1": t1, "d2": d2, "t2": t2},
                  ("Average speed = total distance / total time, with the time in hours "
                   "(minutes ÷ 60).", f"v = {v} km/h."), v.value, "km/h")


def _meeting_time(rng: random.Random) -> Worked:
    d = rng.randint(5, 150)
    v1, v2 = rng.choice([40, 50, 60, 70, 80, 90, 100]), rng.choice([30, 45, 60, 75, 90, 110])
    t = Calc(f"{d}/({v1} + {v2})*60")
    return Worked({"d": d, "v1": v1, "v2": v2},
                  ("Moving towards each other, the gap closes at the relative speed v1 + v2, "
                   "so t = d/(v1 + v2), in hours; × 60 for minutes.", f"t = {t} min."),
                  t.value, "min")


def _final_speed_from_distance(rng: random.Random) -> Worked:
    u, a, s = rng.randint(0, 15), round(rng.uniform(0.5, 4.0), 1), rng.randint(10, 200)
    v = Calc(f"sqrt({u}**2 + 2*{a}*{s})")
    return Worked({"u": u, "a": num(a), "s": s},
                  ("Use v² = u² + 2as.", f"v = {v} m/s."), v.value, "m/s")


def _takeoff_acceleration(rng: random.Random) -> Worked:
    v_kmh, length = rng.randint(200, 300), round(rng.uniform(1.2, 3.0), 1)
    a = Calc(f"({v_kmh}/3.6)**2/(2*{length}*1000)")
    return Worked({"v": v_kmh, "L": num(length)},
                  ("From rest, v² = 2as, so a = v²/(2s), with v in m/s (km/h ÷ 3.6) and s in "
                   "metres (km × 1000).", f"a = {a} m/s²."), a.value, "m/s^2")


FAMILIES: tuple[Family, ...] = (
    Family("final_velocity", Topic.KINEMATICS, (
        "A cart moving at {u} m/s accelerates uniformly at {a} m/s^2 for {t} s. What is its "
        "final speed?",
        "Starting at {u} m/s, a cyclist speeds up at a steady {a} m/s^2. How fast is she "
        "going after {t} s?",
        "An object with initial velocity {u} m/s has a constant acceleration of {a} m/s^2 "
        "along its motion. Find its velocity {t} s later.",
        "An electric scooter rolling at {u} m/s picks up pace at a constant {a} m/s² as its "
        "rider leans forward for {t} seconds. How fast is the scooter moving at the end?",
        "A lab trolley on an air track passes the first light gate at {u} m/s and speeds up "
        "at {a} metres per second squared. What speed does it have {t} s later?",
        "What is the final speed of a body that starts at {u} m/s and accelerates steadily "
        "at {a} m/s^2 for {t} s?",
        "Quick one: u = {u} m/s, a = {a} m/s², t = {t} s. Final speed?",
        "A train leaves a signal at {u} m/s and gains speed at {a} m/s² for {t} seconds. "
        "What speed does it reach?",
    ), _final_velocity),
    Family("final_velocity_kmh", Topic.KINEMATICS, (
        "A car travelling at {u} km/h accelerates at {a} m/s^2 for {t} s. What is its final "
        "speed in m/s?",
        "A bus moving at {u} km/h speeds up uniformly at {a} m/s^2. What is its speed, in "
        "m/s, after {t} s?",
        "Initial speed {u} km/h, constant acceleration {a} m/s^2, time {t} s: find the final "
        "speed in metres per second.",
        "A delivery van cruising at {u} km/h merges onto a highway and speeds up at "
        "{a} m/s² for {t} seconds. What is its speed now, in metres per second?",
        "A racing car exits a corner at {u} km/h and picks up pace at a uniform {a} m/s^2 "
        "for {t} s. What speed, in m/s, does it reach?",
        "What speed in m/s does a vehicle reach if it starts at {u} km/h and accelerates "
        "uniformly at {a} m/s^2 for {t} s?",
        "Quick check: {u} km/h to start, then {a} m/s² for {t} s. Final speed in m/s?",
        "A motorbike at {u} km/h opens the throttle and accelerates at {a} m/s² for {t} s. "
        "How fast is it then going, in m/s?",
    ), _final_velocity_kmh),
    Family("displacement_uniform_acceleration", Topic.KINEMATICS, (
        "A cart moving at {u} m/s accelerates uniformly at {a} m/s^2 for {t} s. How far does "
        "it travel in that time?",
        "A skier has a speed of {u} m/s and a steady acceleration of {a} m/s^2 down a slope. "
        "What distance does she cover in the next {t} s?",
        "Initial velocity {u} m/s, constant acceleration {a} m/s^2, duration {t} s: find the "
        "displacement.",
        "Over {t} seconds a runner who started the interval at {u} m/s picks up speed at "
        "{a} m/s². How many metres does he run during it?",
    ), _displacement),
    Family("distance_from_rest_minutes", Topic.KINEMATICS, (
        "A train starts from rest and accelerates uniformly at {a} m/s^2 for {t} minutes. "
        "How far does it travel, in km?",
        "Starting from a standstill, a maglev vehicle speeds up at a constant {a} m/s^2. "
        "What distance in kilometres has it covered after {t} min?",
        "An object initially at rest has a uniform acceleration of {a} m/s^2. Find the "
        "distance in km it moves in {t} minutes.",
        "A freight locomotive pulls away from a siding, starting at rest and picking up pace "
        "at a uniform {a} m/s². How many kilometres has it gone after {t} minutes?",
        "On a long test track, an electric car starts from a standstill and accelerates at "
        "a constant {a} m/s^2 for {t} min. How far, in km, does it get?",
        "How far, in kilometres, does a vehicle travel in {t} minutes if it starts at rest "
        "and accelerates steadily at {a} m/s^2?",
        "Quick one: from rest, a = {a} m/s², t = {t} min. Distance in km?",
        "For {t} minutes after leaving the platform, a tram gains speed steadily at "
        "{a} m/s². How many kilometres from the platform is it then?",
    ), _distance_from_rest_minutes),
    Family("projectile_range", Topic.KINEMATICS, (
        "A ball is launched from level ground at {v} m/s, {angle}° above the horizontal. "
        "Ignoring air resistance (g = 9.8 m/s^2), what is its range?",
        "A projectile leaves flat ground with speed {v} m/s at an elevation of {angle}°. How "
        "far away does it land? Take g = 9.8 m/s^2 and neglect drag.",
        "With g = 9.8 m/s^2 and no air resistance, find the horizontal range of a shot fired "
        "at {v} m/s at {angle}° to the level ground.",
        "A golfer strikes a ball off a flat fairway at {v} m/s, {angle}° above the "
        "horizontal. With g = 9.8 m/s^2 and air resistance neglected, how far away does it "
        "land on the level fairway?",
        "In a physics lab, a spring launcher on the floor fires a steel ball at {v} m/s at "
        "{angle}° above the horizontal. Taking g = 9.8 m/s² and ignoring drag, how far from "
        "the launcher does the ball land at the same level?",
        "What is the horizontal range on level ground of a projectile fired at {v} metres "
        "per second, {angle}° above the horizontal? Use g = 9.8 m/s^2, no air resistance.",
        "Quick one: launch speed {v} m/s, angle {angle}°, flat ground, g = 9.8 m/s², no "
        "drag. Range?",
        "A footballer chips the ball off the pitch at {v} m/s, aimed {angle}° up from the "
        "grass. Where does it come down, measured from the kick? (g = 9.8 m/s², no drag)",
    ), _projectile_range),
    Family("free_fall", Topic.KINEMATICS, (
        "A stone is dropped from rest. How far does it fall in {t} s? Use g = 9.8 m/s^2.",
        "An apple falls from a branch, starting at rest. Neglecting air resistance, what "
        "distance does it drop in the first {t} s? (g = 9.8 m/s^2)",
        "Taking g = 9.8 m/s^2, find the distance fallen by an object released from rest "
        "after {t} seconds.",
        "A window cleaner drops a sponge from a high ledge, and it falls freely from rest "
        "for {t} s. How far has it fallen? Use g = 9.8 m/s^2 and ignore air resistance.",
        "In a lab, an electromagnet releases a steel ball from rest and a timer records "
        "{t} s of free fall before it hits the trapdoor. What distance did it fall? "
        "(g = 9.8 m/s²)",
        "How far does a body fall from rest in {t} seconds, with g = 9.8 m/s^2 and no air "
        "resistance?",
        "Quick one: dropped from rest, t = {t} s, g = 9.8 m/s². Distance fallen?",
        "A climber lets go of a carabiner, which falls freely for {t} s before anything "
        "stops it. Through what height has it fallen? Take g as 9.8 m/s².",
    ), _free_fall),
    Family("fall_time_from_height_cm", Topic.KINEMATICS, (
        "A coin rolls off a table {h} cm high. How long does it take to fall to the floor? "
        "Use g = 9.8 m/s^2 and ignore air resistance.",
        "A pen is dropped from rest {h} cm above the ground. What is its fall time? "
        "(g = 9.8 m/s^2)",
        "Find the time for an object released from rest to fall {h} cm, taking "
        "g = 9.8 m/s^2.",
        "A toy block slips off a shelf {h} cm above the floor, starting from rest. How long "
        "until it hits the floor? Take g = 9.8 m/s^2 and ignore air resistance.",
        "In a reaction-timer demonstration, a steel ball is released from rest {h} "
        "centimetres above a pressure pad. How many seconds does it take to reach the pad, "
        "with g = 9.8 m/s²?",
        "How long does it take an object dropped from rest to fall through {h} cm? Use "
        "g = 9.8 m/s^2 and neglect drag.",
        "Quick one: drop height {h} cm, from rest, g = 9.8 m/s². Fall time in seconds?",
        "A drop of water detaches from a tap {h} cm above the sink bottom. How many seconds "
        "pass before it lands, if g is 9.8 m/s²?",
    ), _fall_time_cm),
    Family("max_height_vertical_throw", Topic.KINEMATICS, (
        "A ball is thrown straight up at {u} m/s. How high does it rise above the launch "
        "point? Use g = 9.8 m/s^2.",
        "A juggler tosses a club vertically upward with speed {u} m/s. Ignoring air "
        "resistance, what maximum height above her hand does it reach? (g = 9.8 m/s^2)",
        "An object is projected vertically upward at {u} m/s. Taking g = 9.8 m/s^2, find "
        "its greatest height above the starting point.",
        "Fired straight at the sky at {u} m/s, a toy rocket coasts with no engine. How far "
        "above its launch pad does it get before turning back? Use g = 9.8 m/s².",
    ), _max_height_throw),
    Family("horizontal_launch_range", Topic.KINEMATICS, (
        "A stone is thrown horizontally at {v} m/s from the top of a cliff {h} m high. How "
        "far from the base of the cliff does it land? Use g = 9.8 m/s^2.",
        "A ball rolls off a horizontal roof {h} m above the ground with speed {v} m/s. "
        "Ignoring air resistance, what horizontal distance does it travel before landing? "
        "(g = 9.8 m/s^2)",
        "A projectile is launched horizontally from a height of {h} m with speed {v} m/s. "
        "Taking g = 9.8 m/s^2, find its horizontal range.",
        "A stunt rider launches horizontally off a ramp edge {h} m above the ground at "
        "{v} m/s. Neglecting air resistance and taking g = 9.8 m/s^2, how far horizontally "
        "does the rider travel before touching down?",
        "A drone flying level at {v} m/s, {h} m above flat farmland, releases a small seed "
        "bag. How far ahead of the release point, horizontally, does the bag land? Use "
        "g = 9.8 m/s² and ignore air resistance.",
        "What horizontal distance does a projectile cover if it is launched horizontally at "
        "{v} metres per second from {h} m above level ground? Take g = 9.8 m/s^2, no drag.",
        "Quick one: horizontal launch at {v} m/s from a height of {h} m, g = 9.8 m/s². How "
        "far from the point directly below does it land?",
        "A package slides off the edge of a {h} m tall loading platform moving at {v} m/s "
        "horizontally. At what distance out from the platform's foot does it hit the ground? "
        "(g = 9.8 m/s², no drag)",
    ), _horizontal_launch),
    Family("stopping_distance_kmh", Topic.KINEMATICS, (
        "A driver travelling at {v} km/h sees a hazard. Her reaction time is {tr} s and the "
        "brakes then decelerate the car at {a} m/s^2. What is the total stopping distance?",
        "A car moves at {v} km/h. The driver takes {tr} s to react, then brakes with a "
        "constant deceleration of {a} m/s^2. How far does the car travel from the moment the "
        "hazard appears until it stops?",
        "Speed {v} km/h, reaction time {tr} s, braking deceleration {a} m/s^2: find the "
        "overall stopping distance in metres.",
        "A lorry driver doing {v} km/h spots fallen cargo ahead. It takes him {tr} s to hit "
        "the brakes, which then slow the truck at {a} m/s^2. What total distance in metres "
        "does the lorry cover before stopping?",
        "On a driving-school test track, a learner doing {v} km/h hears a buzzer, reacts "
        "after {tr} seconds, and then brakes at a constant {a} m/s². How far does the car go "
        "between the buzzer and coming to a halt?",
        "What is the total stopping distance, in metres, for a vehicle at {v} km/h if the "
        "reaction time is {tr} s and the braking deceleration is {a} m/s^2?",
        "Quick one: {v} km/h, {tr} s to react, then braking at {a} m/s². Total stopping "
        "distance in m?",
        "A motorcyclist sees a dog run out while riding at {v} km/h; {tr} s pass before he "
        "squeezes the brakes, which slow him at {a} m/s². How many metres does he cover "
        "before coming to rest?",
    ), _stopping_distance_kmh),
    Family("average_speed_two_legs", Topic.KINEMATICS, (
        "A car travels {d1} km in {t1} minutes, then {d2} km in {t2} minutes. What is its "
        "average speed for the whole trip, in km/h?",
        "On a journey, a bus covers {d1} km in {t1} min and then a further {d2} km in "
        "{t2} min. Find its average speed in kilometres per hour.",
        "Leg one: {d1} km in {t1} minutes. Leg two: {d2} km in {t2} minutes. Calculate the "
        "average speed over both legs in km/h.",
        "A taxi covers {d1} km through the suburbs in {t1} minutes, then {d2} km along a "
        "ring road in {t2} minutes. What is its average speed over the whole fare, in "
        "kilometres per hour?",
        "A family drives {d1} km to a lake in {t1} min and, without stopping, continues "
        "{d2} km to the coast in {t2} min. Find the average speed for the entire drive in "
        "km/h.",
        "What is the average speed in km/h of a trip made of {d1} km in {t1} minutes "
        "followed by {d2} km in {t2} minutes?",
        "Quick one: {d1} km in {t1} min, then {d2} km in {t2} min. Average speed in km/h?",
        "A courier drives {d1} km to a depot, which takes {t1} minutes, and then drives "
        "{d2} km onward in {t2} minutes. Ignoring the stop, how fast did she go on average, "
        "in km/h?",
    ), _average_speed_two_legs),
    Family("meeting_time_relative_velocity", Topic.KINEMATICS, (
        "Two cars are {d} km apart on a straight road and drive towards each other at "
        "{v1} km/h and {v2} km/h. How many minutes pass before they meet?",
        "A train leaves town A at {v1} km/h heading for town B, {d} km away, at the same "
        "moment as a train leaves B for A at {v2} km/h. After how many minutes do they pass "
        "each other?",
        "Two objects approach each other head-on with speeds {v1} km/h and {v2} km/h, "
        "starting {d} km apart. Find the time in minutes until they meet.",
        "Two delivery drones fly directly towards each other from depots {d} km apart, one "
        "at {v1} km/h and the other at {v2} km/h. How many minutes until they meet?",
        "A fire engine leaves its station at {v1} km/h just as an ambulance sets out from a "
        "hospital {d} km down the same road, heading for the station at {v2} km/h. After "
        "how many minutes do they pass?",
        "How many minutes does it take two vehicles {d} km apart to meet if they drive "
        "directly towards each other at {v1} km/h and {v2} km/h?",
        "Quick one: gap {d} km, head-on speeds {v1} km/h and {v2} km/h. Minutes until they "
        "meet?",
        "Two coaches set off toward one another along a {d} km stretch of motorway, one "
        "cruising at {v1} km/h and the other at {v2} km/h. How long, in minutes, until they "
        "meet?",
    ), _meeting_time),
    Family("final_speed_from_distance", Topic.KINEMATICS, (
        "A car moving at {u} m/s accelerates uniformly at {a} m/s^2 over a distance of "
        "{s} m. What is its final speed?",
        "A sled starts down a slope at {u} m/s and accelerates steadily at {a} m/s^2. How "
        "fast is it moving after sliding {s} m?",
        "Initial speed {u} m/s, constant acceleration {a} m/s^2, displacement {s} m: find the "
        "final speed (no time is given).",
        "A cyclist freewheels into a downhill stretch at {u} m/s and gains speed at a "
        "steady {a} m/s^2 over {s} m. How fast is she going at the bottom?",
        "A test car crosses a timing line at {u} m/s and accelerates uniformly at {a} m/s² "
        "until it reaches a second timing line {s} metres further on. What speed does it "
        "have at the second line?",
        "What final speed does an object reach if it starts at {u} m/s and accelerates "
        "steadily at {a} m/s^2 over {s} m?",
        "Quick one: u = {u} m/s, a = {a} m/s², distance {s} m. Final speed?",
        "A rollercoaster car enters a {s} m straight at {u} m/s "
        "and is pushed along it with an acceleration of {a} m/s². What speed does it have at "
        "the end of the straight?",
    ), _final_speed_from_distance),
    Family("takeoff_acceleration", Topic.KINEMATICS, (
        "An aircraft must reach {v} km/h to take off and the runway is {L} km long. What "
        "minimum constant acceleration does it need, starting from rest?",
        "A jet starts from rest and accelerates uniformly along a {L} km runway, leaving the "
        "ground at {v} km/h. What is its acceleration?",
        "From rest, an object reaches {v} km/h after covering {L} km with uniform "
        "acceleration. Find the acceleration in m/s^2.",
        "A cargo jet begins its take-off roll from a standstill and must be doing {v} km/h "
        "by the time it has used {L} km of runway. What uniform acceleration, in m/s^2, "
        "does this require?",
        "A high-speed train pulls out of a station from rest and reaches {v} km/h after "
        "{L} km of steady acceleration. What is its acceleration in m/s²?",
        "What constant acceleration, in m/s^2, takes an object from rest to {v} km/h over a "
        "distance of {L} km?",
        "Quick one: from rest to {v} km/h in {L} km, uniform acceleration. Find a in m/s².",
        "Engineers want a plane to hit its lift-off speed of {v} km/h by the end of a "
        "{L} km strip, starting from a standstill. What steady acceleration is required, in "
        "m/s²?",
    ), _takeoff_acceleration),
)
