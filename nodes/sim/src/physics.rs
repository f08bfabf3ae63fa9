//! Physics of a world with rapier3d, at a fixed step.
//!
//! - The ego vehicle is a dynamic rigid body on the road whose collider has
//!   no friction of its own: its tyres are a friction-circle model that turns
//!   the /cmd_vel command into longitudinal and lateral forces, each limited by
//!   μ·m·g of the surface under it. Braking from v therefore takes v²/(2μg)
//!   once the brakes ask for more than the road gives (a test checks dry
//!   asphalt and ice).
//! - Other vehicles and pedestrians are kinematic bodies moved by their
//!   scripts; contacts between any two bodies that carry an instance id (and
//!   between the cup and the floor) are reported as collision events.
//! - The arm is a multibody (reduced coordinates) of six revolute joints with
//!   limits and position motors, gravity-compensated like a real arm's
//!   controller, with a parallel-jaw gripper on its flange (two fingers on
//!   prismatic joints whose motors squeeze with at most [`GRIP_FORCE`]; what
//!   they hold, they hold by contact friction); the cup is a free rigid body
//!   that stands on the table, can be pushed, grasped and lifted by the arm and
//!   falls off the edge.

use std::collections::HashSet;
use std::f32::consts::FRAC_PI_2;

use nalgebra::{Isometry3, Point3, UnitQuaternion, Vector2, Vector3};
use rapier3d::prelude::*;

use crate::scenario::{ArmEgo, VehicleEgo};
use crate::world::{class, Motion, Object, Script, Shape, World, FINGER_HALF, GRIPPER_MAX_OPENING};

/// The physics step, seconds.
pub(crate) const DT: f32 = 0.005;
/// Physics steps per second of sim time (1 / DT): every rate of the run
/// (cameras, IMU, odometry) is a whole number of these steps.
pub const STEPS_PER_SECOND: u32 = 200;
/// Standard gravity, m/s², along −z of the map frame.
pub const GRAVITY: f32 = 9.81;
/// Height of the sidewalks above the road, metres.
const KERB: f32 = 0.15;

/// Braking the brakes can give (m/s²) before the tyres limit it: ~1.1 g.
const MAX_BRAKE: f32 = 11.0;
/// Gain of the speed controller (1/s).
pub(crate) const SPEED_GAIN: f32 = 12.0;
/// Reverse speed limit, m/s.
pub(crate) const MAX_REVERSE: f32 = 5.0;
/// Tightest turn the steering allows, metres.
const MIN_TURN_RADIUS: f32 = 5.0;

const G_WORLD: Group = Group::GROUP_1;
const G_ACTOR: Group = Group::GROUP_2;
const G_ARM: Group = Group::GROUP_3;
const G_PROP: Group = Group::GROUP_4;

/// Two bodies started touching.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Collision {
    /// Object indices in the world, `a` < `b`.
    pub a: usize,
    /// The other object's index.
    pub b: usize,
    /// |v_b − v_a| at the first contact, m/s.
    pub relative_speed: f32,
}

struct ScriptState {
    object: usize,
    script: Script,
    start: Isometry3<f32>,
    /// When a crossing began (sim seconds).
    began: Option<f32>,
    /// Half height: scripted actors walk on the road or the kerb, whichever is under them.
    half_z: f32,
    /// Half extents along its own x and y (walkers keep clear of others by them).
    half_xy: Vector2<f32>,
    /// Where a walker is now, and the sim time it got there.
    at: Vector2<f32>,
    at_t: f32,
}

struct ArmState {
    spec: ArmEgo,
    base: RigidBodyHandle,
    links: [RigidBodyHandle; 6],
    joints: [MultibodyJointHandle; 6],
    targets: [f32; 6],
    /// Joint positions and velocities after the last step.
    q: [f32; 6],
    qd: [f32; 6],
    /// The gripper's fingers (+x side, −x side of the flange) and their prismatic joints.
    fingers: [RigidBodyHandle; 2],
    finger_joints: [MultibodyJointHandle; 2],
    /// Object indices of the fingers.
    finger_objects: [usize; 2],
    /// The opening the gripper is asked for, and the one it has, metres between the pads.
    gripper_target: f32,
    opening: f32,
    opening_rate: f32,
}

struct EgoState {
    object: usize,
    spec: VehicleEgo,
    /// Commanded speed (m/s) and yaw rate (rad/s).
    command: (f32, f32),
    last_vel: Vector3<f32>,
    /// Linear acceleration of the last step, world frame.
    accel: Vector3<f32>,
}

/// The rapier3d state of one run. Objects are named by their index in
/// `World::objects`; poses and velocities are in the map frame.
pub struct Physics {
    gravity: Vector3<f32>,
    params: IntegrationParameters,
    pipeline: PhysicsPipeline,
    islands: IslandManager,
    broad_phase: DefaultBroadPhase,
    narrow_phase: NarrowPhase,
    bodies: RigidBodySet,
    colliders: ColliderSet,
    impulse_joints: ImpulseJointSet,
    multibody_joints: MultibodyJointSet,
    ccd: CCDSolver,
    /// Rigid body of each world object (None for visual-only objects).
    handles: Vec<Option<RigidBodyHandle>>,
    scripts: Vec<ScriptState>,
    /// Footprints of the street furniture walkers keep clear of (post, bin,
    /// tree trunk): centre and half extents on the ground.
    furniture: Vec<(Vector2<f32>, Vector2<f32>)>,
    ego: Option<EgoState>,
    arm: Option<ArmState>,
    /// Object pairs touching after the last step.
    touching: HashSet<(usize, usize)>,
    /// Which objects report collisions: instance carriers and the floor.
    reports: Vec<bool>,
    /// Velocities at the start of the step (for the speed of an impact).
    before: Vec<Vector3<f32>>,
    road_half_width: f32,
    /// Height of the kerb beyond the road (0 where there is no sidewalk).
    kerb: f32,
    road_mu: f32,
    sidewalk_mu: f32,
    /// Steps taken.
    steps: u64,
}

fn collider_for(o: &Object, index: usize) -> ColliderBuilder {
    let h = o.half;
    let b = match o.parts.as_slice() {
        [p] if matches!(p.shape, Shape::Cylinder { .. }) => {
            // parry's cylinders stand along y; ours along z.
            ColliderBuilder::cylinder(h.z, h.x).rotation(Vector3::x() * FRAC_PI_2)
        }
        _ => ColliderBuilder::cuboid(h.x, h.y, h.z),
    };
    b.friction(o.friction).user_data(index as u128)
}

impl Physics {
    /// A body and collider for every solid object of the world, the arm's
    /// joints, the ego at its start speed. Panics on a world `World::build`
    /// would not make (an ego object without `World::vehicle`, an arm without
    /// six links).
    pub(crate) fn new(world: &World) -> Physics {
        let mut p = Physics {
            gravity: Vector3::new(0.0, 0.0, -GRAVITY),
            params: IntegrationParameters { dt: DT, ..IntegrationParameters::default() },
            pipeline: PhysicsPipeline::new(),
            islands: IslandManager::new(),
            broad_phase: DefaultBroadPhase::new(),
            narrow_phase: NarrowPhase::new(),
            bodies: RigidBodySet::new(),
            colliders: ColliderSet::new(),
            impulse_joints: ImpulseJointSet::new(),
            multibody_joints: MultibodyJointSet::new(),
            ccd: CCDSolver::new(),
            handles: Vec::with_capacity(world.objects.len()),
            scripts: Vec::new(),
            furniture: world
                .objects
                .iter()
                .filter(|o| matches!(o.class, class::POLE | class::BIN | class::VEGETATION))
                .map(|o| (o.pose.translation.vector.xy(), o.half.xy().map(|h| h.min(0.3))))
                .collect(),
            ego: None,
            arm: None,
            touching: HashSet::new(),
            reports: world.objects.iter().map(|o| o.instance != 0 || o.class == class::FLOOR).collect(),
            before: vec![Vector3::zeros(); world.objects.len()],
            road_half_width: world.road_half_width,
            kerb: if world.objects.iter().any(|o| o.class == class::SIDEWALK) { KERB } else { 0.0 },
            road_mu: world.friction.road as f32,
            sidewalk_mu: world.friction.sidewalk as f32,
            steps: 0,
        };
        let mut arm_links: Vec<(usize, RigidBodyHandle)> = Vec::new();
        let mut fingers: Vec<(usize, RigidBodyHandle)> = Vec::new();
        for (i, o) in world.objects.iter().enumerate() {
            let handle = match &o.motion {
                Motion::Fixed if !o.solid => None,
                Motion::Fixed => {
                    let body = p.bodies.insert(RigidBodyBuilder::fixed().pose(o.pose));
                    let c = collider_for(o, i).collision_groups(InteractionGroups::new(G_WORLD, G_ACTOR | G_PROP));
                    p.colliders.insert_with_parent(c, body, &mut p.bodies);
                    Some(body)
                }
                Motion::Scripted(script) => {
                    let body = p.bodies.insert(RigidBodyBuilder::kinematic_position_based().pose(o.pose));
                    // The mass counts once something hits it and it becomes a free body.
                    let mass = match o.class {
                        class::VEHICLE => 1400.0,
                        class::CHILD => 25.0,
                        class::CYCLIST => 90.0,
                        _ => 75.0,
                    };
                    let c = collider_for(o, i)
                        .mass(mass)
                        .collision_groups(InteractionGroups::new(G_ACTOR, G_ACTOR | G_PROP))
                        .active_collision_types(ActiveCollisionTypes::default() | ActiveCollisionTypes::KINEMATIC_KINEMATIC);
                    p.colliders.insert_with_parent(c, body, &mut p.bodies);
                    p.scripts.push(ScriptState {
                        object: i,
                        script: script.clone(),
                        start: o.pose,
                        began: None,
                        half_z: o.half.z,
                        half_xy: o.half.xy(),
                        at: o.pose.translation.vector.xy(),
                        at_t: 0.0,
                    });
                    Some(body)
                }
                Motion::EgoVehicle => {
                    let spec = world.vehicle.clone().expect("a vehicle world has a vehicle ego");
                    let forward = o.pose.rotation * Vector3::x();
                    let body = p.bodies.insert(
                        RigidBodyBuilder::dynamic()
                            .pose(o.pose)
                            .linvel(forward * spec.speed as f32)
                            .enabled_rotations(false, false, true)
                            .can_sleep(false),
                    );
                    let volume = 8.0 * o.half.x * o.half.y * o.half.z;
                    let c = collider_for(o, i)
                        .friction(0.0)
                        .friction_combine_rule(CoefficientCombineRule::Min)
                        .restitution(0.0)
                        .density(spec.mass as f32 / volume)
                        .collision_groups(InteractionGroups::new(G_ACTOR, G_WORLD | G_ACTOR | G_PROP))
                        .active_collision_types(ActiveCollisionTypes::default() | ActiveCollisionTypes::DYNAMIC_KINEMATIC);
                    p.colliders.insert_with_parent(c, body, &mut p.bodies);
                    let command = (spec.speed as f32, 0.0);
                    p.ego = Some(EgoState { object: i, spec, command, last_vel: forward * command.0, accel: Vector3::zeros() });
                    Some(body)
                }
                Motion::Dynamic { mass } => {
                    let body = p.bodies.insert(RigidBodyBuilder::dynamic().pose(o.pose).ccd_enabled(true));
                    let c = collider_for(o, i).mass(*mass).restitution(0.1).collision_groups(InteractionGroups::new(G_PROP, Group::ALL));
                    p.colliders.insert_with_parent(c, body, &mut p.bodies);
                    Some(body)
                }
                Motion::ArmLink(_) | Motion::ArmFinger(_) => {
                    let body = p.bodies.insert(RigidBodyBuilder::dynamic().pose(o.pose).gravity_scale(0.0).can_sleep(false));
                    let c = collider_for(o, i).density(800.0).collision_groups(InteractionGroups::new(G_ARM, G_PROP));
                    p.colliders.insert_with_parent(c, body, &mut p.bodies);
                    match o.motion {
                        Motion::ArmFinger(_) => fingers.push((i, body)),
                        _ => arm_links.push((i, body)),
                    }
                    Some(body)
                }
            };
            p.handles.push(handle);
        }
        if let Some(spec) = world.arm.clone() {
            p.build_arm(spec, world, &arm_links, &fingers);
        }
        p
    }

    fn build_arm(&mut self, spec: ArmEgo, world: &World, links: &[(usize, RigidBodyHandle)], fingers: &[(usize, RigidBodyHandle)]) {
        assert_eq!(links.len(), 6, "an arm has six links");
        assert_eq!(fingers.len(), 2, "an arm's gripper has two fingers");
        let base = self.bodies.insert(RigidBodyBuilder::fixed().translation(Vector3::new(
            spec.base[0] as f32,
            spec.base[1] as f32,
            spec.base[2] as f32,
        )));
        let axes = joint_axes();
        let mut joints = [MultibodyJointHandle::invalid(); 6];
        let mut parent = base;
        let mut parent_half = 0.0;
        for (j, (obj, body)) in links.iter().enumerate() {
            let half = world.objects[*obj].half.z;
            let [lo, hi] = spec.limits[j];
            let joint = RevoluteJointBuilder::new(axes[j])
                .local_anchor1(Point3::new(0.0, 0.0, parent_half))
                .local_anchor2(Point3::new(0.0, 0.0, -half))
                .limits([lo as f32, hi as f32])
                .motor_position(spec.initial[j] as f32, ARM_STIFFNESS, ARM_DAMPING)
                .contacts_enabled(false);
            joints[j] = self.multibody_joints.insert(parent, *body, joint, true).expect("the arm is a tree");
            parent = *body;
            parent_half = half;
        }
        // Each finger slides along the flange's x (outwards from its centre
        // for the +x finger, along −x for the other): the joint's position is
        // how far the finger's centre is from the flange's axis.
        let mut finger_joints = [MultibodyJointHandle::invalid(); 2];
        let finger_offset = |opening: f32| opening / 2.0 + FINGER_HALF[0];
        for (k, (_, body)) in fingers.iter().enumerate() {
            let axis = if k == 0 { Vector3::x_axis() } else { -Vector3::x_axis() };
            let joint = PrismaticJointBuilder::new(axis)
                .local_anchor1(Point3::new(0.0, 0.0, parent_half))
                .local_anchor2(Point3::new(-axis.x * finger_offset(GRIPPER_MAX_OPENING), 0.0, -FINGER_HALF[2]))
                .limits([finger_offset(0.0) - finger_offset(GRIPPER_MAX_OPENING), 0.0])
                .motor_position(0.0, GRIPPER_STIFFNESS, GRIPPER_DAMPING)
                .motor_max_force(GRIP_FORCE)
                .contacts_enabled(false);
            finger_joints[k] = self.multibody_joints.insert(parent, *body, joint, true).expect("the arm is a tree");
        }
        let link_handles = [links[0].1, links[1].1, links[2].1, links[3].1, links[4].1, links[5].1];
        let initial = spec.initial.map(|x| x as f32);
        self.arm = Some(ArmState {
            spec,
            base,
            links: link_handles,
            joints,
            targets: initial,
            q: [0.0; 6],
            qd: [0.0; 6],
            fingers: [fingers[0].1, fingers[1].1],
            finger_joints,
            finger_objects: [fingers[0].0, fingers[1].0],
            gripper_target: GRIPPER_MAX_OPENING,
            opening: GRIPPER_MAX_OPENING,
            opening_rate: 0.0,
        });
        // Start in the initial pose rather than swinging into it.
        self.place_arm(&initial);
    }

    /// Puts the arm in joint configuration q (from the straight-up pose it
    /// was built in), links and all.
    fn place_arm(&mut self, q: &[f32; 6]) {
        let Some(arm) = &mut self.arm else { return };
        if let Some((mb, _)) = self.multibody_joints.get_mut(arm.joints[0]) {
            // A new multibody takes its (fixed) root for a free one, six more
            // degrees of freedom, until forward kinematics looks at the root's body.
            mb.forward_kinematics(&self.bodies, true);
            let mut disp = vec![0.0; mb.ndofs()];
            for (d, x) in disp.iter_mut().zip(q) {
                *d = *x;
            }
            mb.apply_displacements(&disp);
            mb.forward_kinematics(&self.bodies, true);
            mb.update_rigid_bodies(&mut self.bodies, true);
        }
        arm.q = *q;
    }

    /// Sets what the ego's driver asks for: speed (m/s) and yaw rate (rad/s),
    /// already within the vehicle's limits.
    pub(crate) fn set_cmd_vel(&mut self, speed: f32, yaw_rate: f32) {
        if let Some(e) = &mut self.ego {
            e.command = (speed, yaw_rate);
        }
    }

    /// Joint position targets, radians, already within the limits.
    pub(crate) fn set_joint_targets(&mut self, q: [f32; 6]) {
        if let Some(a) = &mut self.arm {
            a.targets = q;
        }
    }

    /// The opening the gripper closes or opens to (metres between the
    /// pads, already within 0..GRIPPER_MAX_OPENING); closing on something
    /// squeezes it with at most GRIP_FORCE per finger.
    pub(crate) fn set_gripper(&mut self, opening: f32) {
        if let Some(a) = &mut self.arm {
            a.gripper_target = opening;
        }
    }

    /// The gripper's opening (m between the pads) and its rate (m/s) after
    /// the last step; None without an arm.
    pub(crate) fn gripper(&self) -> Option<(f32, f32)> {
        self.arm.as_ref().map(|a| (a.opening, a.opening_rate))
    }

    /// The object both fingers touch, when they do: what the gripper holds.
    pub(crate) fn grasped(&self) -> Option<usize> {
        let arm = self.arm.as_ref()?;
        let mut touched: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
        for pair in self.narrow_phase.contact_pairs() {
            if !pair.manifolds.iter().any(|m| m.points.iter().any(|p| p.dist <= 0.002)) {
                continue;
            }
            let a = self.colliders[pair.collider1].user_data as usize;
            let b = self.colliders[pair.collider2].user_data as usize;
            for (k, f) in arm.finger_objects.iter().enumerate() {
                if a == *f {
                    touched[k].push(b);
                } else if b == *f {
                    touched[k].push(a);
                }
            }
        }
        touched[0].iter().copied().find(|o| touched[1].contains(o))
    }

    /// The arm's joint angles (rad) and velocities (rad/s) after the last
    /// step; None without an arm.
    pub(crate) fn joint_positions(&self) -> Option<([f32; 6], [f32; 6])> {
        self.arm.as_ref().map(|a| (a.q, a.qd))
    }

    /// What the arm's script asks of the step that starts at sim time `t`:
    /// joint targets (rad) and the gripper's opening (m); None without an
    /// arm, or once a command has replaced the script.
    pub(crate) fn scripted_targets(&self, t: f32) -> Option<([f32; 6], f32)> {
        let arm = self.arm.as_ref()?;
        (!arm.spec.trajectory.is_empty()).then(|| (trajectory_at(&arm.spec, &arm.targets, t + DT), arm.gripper_target))
    }

    /// The arm as built (base in the map frame); None without an arm.
    pub(crate) fn arm_spec(&self) -> Option<&ArmEgo> {
        self.arm.as_ref().map(|a| &a.spec)
    }

    /// Pose of a world object now, map frame (its initial pose when physics
    /// doesn't move it). Panics when `i` is not an index of `world.objects`.
    pub fn pose(&self, world: &World, i: usize) -> Isometry3<f32> {
        match self.handles[i] {
            Some(h) => *self.bodies[h].position(),
            None => world.objects[i].pose,
        }
    }

    /// Linear (m/s) and angular (rad/s) velocity of a world object, world
    /// frame; zero for one without a body. Panics when `i` is out of range.
    pub fn velocity(&self, i: usize) -> (Vector3<f32>, Vector3<f32>) {
        match self.handles[i] {
            Some(h) => (*self.bodies[h].linvel(), *self.bodies[h].angvel()),
            None => (Vector3::zeros(), Vector3::zeros()),
        }
    }

    /// Linear acceleration of the ego in the last step (world frame, without gravity).
    pub(crate) fn ego_accel(&self) -> Vector3<f32> {
        self.ego.as_ref().map(|e| e.accel).unwrap_or_else(Vector3::zeros)
    }

    /// Gives an object a velocity, m/s in the world frame (a push); for tests
    /// and for scripted pushes. Meant for dynamic bodies (the ego, a cup, an
    /// actor the ego ran into); an object without a body is left alone.
    /// Panics when `i` is out of range.
    pub fn push(&mut self, i: usize, velocity: Vector3<f32>) {
        if let Some(h) = self.handles[i] {
            self.bodies[h].set_linvel(velocity, true);
        }
    }

    fn surface_mu(&self, y: f32) -> f32 {
        if y.abs() <= self.road_half_width {
            self.road_mu
        } else {
            self.sidewalk_mu
        }
    }

    /// Advances the world by one step (DT) at sim time `t` (the time at the
    /// start of the step); returns the collisions that began in it.
    pub(crate) fn step(&mut self, t: f32) -> Vec<Collision> {
        let t_next = t + DT;
        for (i, h) in self.handles.iter().enumerate() {
            if let Some(h) = h {
                self.before[i] = *self.bodies[*h].linvel();
            }
        }
        self.release_near_ego();
        self.drive_scripts(t_next);
        self.drive_ego();
        self.drive_arm(t_next);
        self.pipeline.step(
            &self.gravity,
            &self.params,
            &mut self.islands,
            &mut self.broad_phase,
            &mut self.narrow_phase,
            &mut self.bodies,
            &mut self.colliders,
            &mut self.impulse_joints,
            &mut self.multibody_joints,
            &mut self.ccd,
            &(),
            &(),
        );
        self.steps += 1;
        if let Some(e) = &mut self.ego {
            let h = self.handles[e.object].expect("the ego has a body");
            let v = *self.bodies[h].linvel();
            e.accel = (v - e.last_vel) / DT;
            e.last_vel = v;
        }
        self.read_arm();
        self.collisions()
    }

    /// A scripted actor the ego is about to run into stops following its
    /// script and becomes a free body with its mass, before the contact is
    /// solved (a kinematic body would stop the car like a wall).
    fn release_near_ego(&mut self) {
        let Some(ego) = self.ego.as_ref().map(|e| e.object) else { return };
        let Some(eh) = self.handles[ego] else { return };
        let reach = self.bodies[eh].linvel().norm() * DT * 2.0 + 0.05;
        let aabb = |p: &Physics, h: RigidBodyHandle| p.colliders[p.bodies[h].colliders()[0]].compute_aabb();
        let ego_box = aabb(self, eh).loosened(reach);
        let mut k = 0;
        while k < self.scripts.len() {
            let obj = self.scripts[k].object;
            let Some(h) = self.handles[obj] else {
                k += 1;
                continue;
            };
            if aabb(self, h).intersects(&ego_box) {
                self.scripts.remove(k);
                let rb = &mut self.bodies[h];
                let v = *rb.linvel();
                rb.set_body_type(RigidBodyType::Dynamic, true);
                rb.set_linvel(v, true);
            } else {
                k += 1;
            }
        }
    }

    /// Footprints of the actors and the ego now: centre, half extents along
    /// the world axes, and the object (the furniture's, fixed, are kept apart).
    fn footprints(&self) -> Vec<(Vector2<f32>, Vector2<f32>, usize)> {
        let mut out: Vec<_> = self
            .scripts
            .iter()
            .filter_map(|s| {
                let h = self.handles[s.object]?;
                let rb = &self.bodies[h];
                let (c, sn) = (rb.rotation().angle().cos().abs(), rb.rotation().angle().sin().abs());
                let half = Vector2::new(c * s.half_xy.x + sn * s.half_xy.y, sn * s.half_xy.x + c * s.half_xy.y);
                Some((rb.translation().xy(), half, s.object))
            })
            .collect();
        if let Some(e) = &self.ego {
            if let Some(h) = self.handles[e.object] {
                let half = Vector2::new(e.spec.size[0] as f32, e.spec.size[1] as f32) / 2.0;
                out.push((self.bodies[h].translation().xy(), Vector2::new(half.x.max(half.y), half.x.max(half.y)), e.object));
            }
        }
        out
    }

    fn drive_scripts(&mut self, t: f32) {
        let ego_pos = self.ego.as_ref().and_then(|e| self.handles[e.object]).map(|h| self.bodies[h].translation().xy());
        let walkers = self.scripts.iter().any(|s| matches!(s.script, Script::Walk { .. }));
        let others = if walkers { self.footprints() } else { Vec::new() };
        let (road_half, kerb) = (self.road_half_width, self.kerb);
        for s in &mut self.scripts {
            let Some(h) = self.handles[s.object] else { continue };
            let pose = match &s.script {
                Script::Static => continue,
                Script::Drive { speed } => {
                    let forward = s.start.rotation * Vector3::x();
                    Isometry3::from_parts((s.start.translation.vector + forward * (*speed * t)).into(), s.start.rotation)
                }
                Script::Walk { speed } => {
                    walk(s, *speed, t, &others, &self.furniture, road_half);
                    let z = s.start.translation.z;
                    Isometry3::from_parts(Vector3::new(s.at.x, s.at.y, z).into(), s.start.rotation)
                }
                Script::Cross { speed, time, distance, direction, length } => {
                    if s.began.is_none() {
                        let by_time = time.is_some_and(|t0| t >= t0);
                        let by_distance = match (distance, ego_pos) {
                            (Some(d), Some(e)) => (e - s.start.translation.vector.xy()).norm() <= *d,
                            _ => false,
                        };
                        if by_time || by_distance {
                            s.began = Some(t);
                        }
                    }
                    let Some(t0) = s.began else { continue };
                    let travelled = (*speed * (t - t0)).min(*length);
                    let facing = UnitQuaternion::from_axis_angle(&Vector3::z_axis(), direction.y.atan2(direction.x));
                    Isometry3::from_parts((s.start.translation.vector + *direction * travelled).into(), facing)
                }
            };
            let mut pose = pose;
            if road_half > 0.0 {
                let y = pose.translation.y;
                pose.translation.z = if y.abs() > road_half { kerb } else { 0.0 } + s.half_z + 0.002;
            }
            self.bodies[h].set_next_kinematic_position(pose);
        }
    }

    fn drive_ego(&mut self) {
        let Some(e) = &self.ego else { return };
        let Some(h) = self.handles[e.object] else { return };
        let (target_speed, target_yaw_rate) = e.command;
        let max_accel = e.spec.max_accel as f32;
        let max_yaw_rate = e.spec.max_yaw_rate as f32;
        let rb = &self.bodies[h];
        let mu = self.surface_mu(rb.translation().y);
        // On the ground? (A car in the air has no grip.)
        let grounded = rb.translation().z < e_half_height(&self.colliders, rb) + 0.05;
        let rot = *rb.rotation();
        let forward = rot * Vector3::x();
        let left = rot * Vector3::y();
        let v = *rb.linvel();
        let v_long = v.dot(&forward);
        let v_lat = v.dot(&left);
        let mass = rb.mass();

        let grip = if grounded { mu * GRAVITY } else { 0.0 };
        let wanted = (SPEED_GAIN * (target_speed - v_long)).clamp(-MAX_BRAKE, max_accel);
        // Braking and driving alike: the tyres give at most μg.
        let a_long = wanted.clamp(-grip, grip);
        let lateral_left = (grip * grip - a_long * a_long).max(0.0).sqrt();
        let a_lat = (-v_lat / DT).clamp(-lateral_left, lateral_left);
        let turn_limit = max_yaw_rate.min(v_long.abs() / MIN_TURN_RADIUS);
        let yaw_rate = if grounded { target_yaw_rate.clamp(-turn_limit, turn_limit) * v_long.signum() } else { rb.angvel().z };
        let impulse = (forward * a_long + left * a_lat) * mass * DT;
        let rb = &mut self.bodies[h];
        rb.apply_impulse(impulse, true);
        rb.set_angvel(Vector3::new(0.0, 0.0, yaw_rate), true);
    }

    fn drive_arm(&mut self, t: f32) {
        let Some(arm) = &self.arm else { return };
        let targets = if arm.spec.trajectory.is_empty() { arm.targets } else { trajectory_at(&arm.spec, &arm.targets, t) };
        let handles = arm.joints;
        let finger_target = (arm.gripper_target.clamp(0.0, GRIPPER_MAX_OPENING) - GRIPPER_MAX_OPENING) / 2.0;
        for h in arm.finger_joints {
            if let Some((mb, link)) = self.multibody_joints.get_mut(h) {
                if let Some(l) = mb.link_mut(link) {
                    l.joint.data.set_motor_position(JointAxis::LinX, finger_target, GRIPPER_STIFFNESS, GRIPPER_DAMPING);
                }
            }
        }
        for j in 0..6 {
            if let Some((mb, link)) = self.multibody_joints.get_mut(handles[j]) {
                if let Some(l) = mb.link_mut(link) {
                    l.joint.data.set_motor_position(JointAxis::AngX, targets[j], ARM_STIFFNESS, ARM_DAMPING);
                }
            }
        }
    }

    fn read_arm(&mut self) {
        let Some(arm) = &self.arm else { return };
        let mut q = [0.0; 6];
        let mut parent_rot = *self.bodies[arm.base].rotation();
        for ((qj, link), joint) in q.iter_mut().zip(&arm.links).zip(&arm.joints) {
            let child_rot = *self.bodies[*link].rotation();
            if let Some((mb, link)) = self.multibody_joints.get(*joint) {
                if let Some(l) = mb.link(link) {
                    *qj = RevoluteJoint { data: l.joint.data }.angle(&parent_rot, &child_rot);
                }
            }
            parent_rot = child_rot;
        }
        // The opening: the distance between the fingers' centres along the
        // flange's x, less a finger's thickness.
        let flange = self.bodies[arm.links[5]].position();
        let [l, r] = arm.fingers.map(|f| (flange.inverse() * self.bodies[f].translation()).x);
        let opening = (l - r - 2.0 * FINGER_HALF[0]).max(0.0);
        let arm = self.arm.as_mut().expect("checked above");
        for ((qd, new), old) in arm.qd.iter_mut().zip(&q).zip(&arm.q) {
            *qd = (new - old) / DT;
        }
        arm.q = q;
        arm.opening_rate = (opening - arm.opening) / DT;
        arm.opening = opening;
    }

    /// Drops the arm's scripted trajectory: from now on it follows
    /// `set_joint_targets` alone (a /joint_commands message replaces the script).
    pub(crate) fn override_trajectory(&mut self) {
        if let Some(a) = &mut self.arm {
            a.spec.trajectory.clear();
        }
    }

    fn collisions(&mut self) -> Vec<Collision> {
        let mut now = HashSet::new();
        for pair in self.narrow_phase.contact_pairs() {
            let touching = pair.manifolds.iter().any(|m| m.points.iter().any(|p| p.dist <= 0.002));
            if !touching {
                continue;
            }
            let a = self.colliders[pair.collider1].user_data as usize;
            let b = self.colliders[pair.collider2].user_data as usize;
            if a == b || !self.reports[a] || !self.reports[b] {
                continue;
            }
            now.insert((a.min(b), a.max(b)));
        }
        // Bodies placed touching (a cup on its table) are not news.
        if self.steps <= 1 {
            self.touching = now;
            return Vec::new();
        }
        let mut started: Vec<(usize, usize)> = now.difference(&self.touching).copied().collect();
        started.sort_unstable();
        let events: Vec<Collision> =
            started.into_iter().map(|(a, b)| Collision { a, b, relative_speed: (self.before[b] - self.before[a]).norm() }).collect();
        self.touching = now;
        events
    }
}

const ARM_STIFFNESS: f32 = 900.0;
const ARM_DAMPING: f32 = 60.0;
const GRIPPER_STIFFNESS: f32 = 400.0;
const GRIPPER_DAMPING: f32 = 40.0;
/// The most a finger pushes with, newtons (a small parallel gripper's).
pub(crate) const GRIP_FORCE: f32 = 20.0;

/// The joint axes of the arm: base yaw, shoulder pitch, elbow pitch, wrist
/// roll, wrist pitch, flange roll (link frames: z along the link). The
/// physics, the expert's kinematics and the robot description share them.
pub fn joint_axes() -> [UnitVector<f32>; 6] {
    [Vector3::z_axis(), Vector3::y_axis(), Vector3::y_axis(), Vector3::z_axis(), Vector3::y_axis(), Vector3::z_axis()]
}

fn e_half_height(colliders: &ColliderSet, rb: &RigidBody) -> f32 {
    rb.colliders().first().and_then(|c| colliders[*c].shape().as_cuboid().map(|c| c.half_extents.z)).unwrap_or(0.0)
}

/// The scripted joint targets at time t: the last trajectory point reached,
/// interpolated linearly towards the next (from `initial` at t = 0 towards
/// the first point); the last point once it has passed.
pub fn trajectory_at(spec: &ArmEgo, initial: &[f32; 6], t: f32) -> [f32; 6] {
    let pts = &spec.trajectory;
    let mut prev = (0.0f32, *initial);
    for (tp, q) in pts {
        let q = q.map(|x| x as f32);
        let tp = *tp as f32;
        if t < tp {
            let span = (tp - prev.0).max(1e-6);
            let k = ((t - prev.0) / span).clamp(0.0, 1.0);
            let mut out = [0.0; 6];
            for j in 0..6 {
                out[j] = prev.1[j] + (q[j] - prev.1[j]) * k;
            }
            return out;
        }
        prev = (tp, q);
    }
    prev.1
}

/// A walker's step to sim time `t`: ahead at `speed` while the way is clear
/// (nobody's footprint within a stride), else a sidestep towards the side
/// with room (staying on its side of the kerb), else a wait.
fn walk(
    s: &mut ScriptState,
    speed: f32,
    t: f32,
    others: &[(Vector2<f32>, Vector2<f32>, usize)],
    furniture: &[(Vector2<f32>, Vector2<f32>)],
    road_half: f32,
) {
    let dt = (t - s.at_t).max(0.0);
    s.at_t = t;
    let forward = (s.start.rotation * Vector3::x()).xy();
    let left = Vector2::new(-forward.y, forward.x);
    let radius = s.half_xy.y.max(0.15);
    let hits = |p: Vector2<f32>, c: &Vector2<f32>, half: &Vector2<f32>| {
        let d = p - c;
        d.x.abs() < half.x + radius && d.y.abs() < half.y + radius
    };
    let blocked = |p: Vector2<f32>| {
        others.iter().any(|(c, half, o)| *o != s.object && hits(p, c, half)) || furniture.iter().any(|(c, half)| hits(p, c, half))
    };
    let on_my_side = |p: Vector2<f32>| road_half <= 0.0 || (p.y.abs() > road_half) == (s.start.translation.y.abs() > road_half);
    let ahead = s.at + forward * (speed * dt);
    let probe = s.at + forward * (speed * dt + 0.6);
    if !blocked(probe) {
        s.at = ahead;
        return;
    }
    let side_step = 0.8 * speed * dt;
    for dir in [1.0f32, -1.0] {
        let side = s.at + left * (dir * side_step);
        if on_my_side(side) && !blocked(side + forward * 0.6) && !blocked(side) {
            s.at = side;
            return;
        }
    }
}
