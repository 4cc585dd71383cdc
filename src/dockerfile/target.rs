//! Which stages a target needs, and in what order they can be built.
//!
//! A stage needs the stage it starts `FROM`, every stage a `COPY --from=`
//! names and every stage a `RUN --mount=…,from=` names (by name, any case,
//! or by index; anything else is an image). Stages are put into levels:
//! level 0 needs no other stage, level n needs only stages of lower levels,
//! so the stages of one level are independent and can be built in parallel.

use super::Dockerfile;
use super::error::{Located, Pos};
use super::expand::Base;
use super::instruction::Instruction;

/// The target stage: the one named `target`, or the last.
pub fn find_target(file: &Dockerfile, target: Option<&str>) -> Result<usize, String> {
    let Some(name) = target else { return Ok(file.stages.len() - 1) };
    if let Some(i) = file.stages.iter().position(|s| s.name().is_some_and(|n| n.eq_ignore_ascii_case(name))) {
        return Ok(i);
    }
    let names: Vec<&str> = file.stages.iter().filter_map(|s| s.name()).collect();
    let known = if names.is_empty() {
        "the file names no stage (FROM IMAGE AS NAME)".to_owned()
    } else {
        format!("its stages are {}", names.join(", "))
    };
    Err(format!("target stage {name:?} is not in the Dockerfile; {known}"))
}

/// The stage a `--from` names, if it names a stage rather than an image.
pub fn stage_ref(file: &Dockerfile, from: &str) -> Option<usize> {
    if let Some(i) = file.stages.iter().position(|s| s.name().is_some_and(|n| n.eq_ignore_ascii_case(from))) {
        return Some(i);
    }
    from.parse::<usize>().ok().filter(|i| *i < file.stages.len())
}

/// The stages stage `index` needs directly (given what its FROM turned out
/// to be), each with the position that asks for it. `from` values take no
/// variables, so the parsed instructions tell.
pub fn dependencies(file: &Dockerfile, index: usize, base: &Base) -> Vec<(usize, Pos)> {
    let stage = &file.stages[index];
    let mut out = Vec::new();
    if let Base::Stage(i) = base {
        out.push((*i, stage.from.pos));
    }
    for spanned in &stage.instructions {
        let froms: Vec<&str> = match &spanned.instruction {
            Instruction::Copy(c) => c.from.iter().map(String::as_str).collect(),
            Instruction::Run(r) => r.mounts.iter().filter_map(|m| m.from.as_deref()).collect(),
            _ => Vec::new(),
        };
        for from in froms {
            if let Some(i) = stage_ref(file, from) {
                out.push((i, spanned.pos));
            }
        }
    }
    out
}

/// The needed stages in build order, and their levels.
pub struct Order {
    pub stages: Vec<usize>,
    pub levels: Vec<Vec<usize>>,
}

/// Orders the stages `target` needs, from each stage's direct dependencies;
/// a stage whose FROM failed is an error only when it is needed.
pub fn order(file: &Dockerfile, deps: &[Result<Vec<(usize, Pos)>, Located>], target: usize) -> Result<Order, Located> {
    let mut level: Vec<Option<usize>> = vec![None; deps.len()];
    let mut path: Vec<usize> = Vec::new();
    visit(file, deps, target, &mut level, &mut path)?;
    let mut needed: Vec<usize> = (0..deps.len()).filter(|i| level[*i].is_some()).collect();
    needed.sort_by_key(|i| (level[*i], *i));
    let depth = needed.iter().filter_map(|i| level[*i]).max().unwrap_or(0);
    let mut levels = vec![Vec::new(); depth + 1];
    for i in &needed {
        if let Some(l) = level[*i] {
            levels[l].push(*i);
        }
    }
    Ok(Order { stages: needed, levels })
}

fn visit(
    file: &Dockerfile,
    deps: &[Result<Vec<(usize, Pos)>, Located>],
    i: usize,
    level: &mut Vec<Option<usize>>,
    path: &mut Vec<usize>,
) -> Result<usize, Located> {
    if let Some(l) = level[i] {
        return Ok(l);
    }
    let direct = deps[i].as_ref().map_err(Clone::clone)?;
    path.push(i);
    let mut mine = 0;
    for &(dep, pos) in direct {
        if path.contains(&dep) {
            let name = |j: usize| file.stages[j].name().map_or_else(|| j.to_string(), str::to_owned);
            let start = path.iter().position(|p| *p == dep).unwrap_or(0);
            let cycle: Vec<String> = path[start..].iter().map(|j| name(*j)).chain([name(dep)]).collect();
            return Err(Located::new(
                pos,
                format!("circular dependency between stages: {}; a stage cannot use itself", cycle.join(" -> ")),
            ));
        }
        mine = mine.max(visit(file, deps, dep, level, path)? + 1);
    }
    path.pop();
    level[i] = Some(mine);
    Ok(mine)
}
