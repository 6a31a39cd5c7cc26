/* zh-CN first; English available. */
window.HuleiI18n = {
  "zh-CN": {
    title: "护蕾 · 走访覆盖", login: "登录", phone: "手机号", password: "密码", signin: "登录", logout: "退出",
    up: "返回上级", period: "统计期间", current_phase: "当前阶段", month: "按月",
    unit_numbers: "单位数据", click_hint: "点击地图上的区域查看数据，双击或点“下钻”查看下级。",
    households: "户数", visited: "已走访", percent: "覆盖率", never_visited: "从未走访", mismatch_visits: "位置异常走访",
    high_risk_children: "高风险儿童", overdue_followups: "逾期回访", problems_open: "未销号问题",
    problems_overdue: "逾期问题", referrals_overdue: "逾期强制报告", drill: "下钻",
    not_visited: "未走访户", no_helper: "无帮扶人的高风险儿童", overdue_problems: "逾期问题", referrals: "强制报告",
    next_week: "下周联合执法安排", reports: "月报报送情况", none: "暂无", loading: "加载中…",
    unavailable: "该功能的接口尚未提供", forbidden: "当前角色无权查看", login_failed: "登录失败：",
    not_applicable: "—", state_submitted: "已报送", state_submitted_late: "逾期报送", state_generated: "已生成未报送",
    state_pending: "待报送", state_late: "逾期未报送", due: "截止", no_plan: "下周尚无计划",
    status_new: "待接收", status_received: "已接收", status_handled: "已处置", overdue: "逾期", deadline: "期限",
    more: "还有更多…", lang_switch: "English", base_layer_none: "无底图", select_unit: "请先在地图上选择区域",
    high_risk_count: "高风险儿童（较大/重大风险）人数", on_ledger: "附件3台账", helper_pending: "帮扶人待确认"
  },
  "en": {
    title: "Hulei · Visit coverage", login: "Sign in", phone: "Phone", password: "Password", signin: "Sign in",
    logout: "Sign out", up: "Up one level", period: "Period", current_phase: "Current phase", month: "Month",
    unit_numbers: "Unit figures", click_hint: "Click an area for its figures; double-click or Drill down for its parts.",
    households: "Households", visited: "Visited", percent: "Coverage", never_visited: "Never visited",
    mismatch_visits: "Location mismatches", high_risk_children: "High-risk children",
    overdue_followups: "Overdue follow-ups", problems_open: "Open problems", problems_overdue: "Overdue problems",
    referrals_overdue: "Overdue referrals", drill: "Drill down", not_visited: "Households not visited",
    no_helper: "High-risk children without helpers", overdue_problems: "Overdue problems", referrals: "Referrals",
    next_week: "Next week's joint inspections", reports: "Monthly reports", none: "None", loading: "Loading…",
    unavailable: "The API for this panel is not available yet", forbidden: "Your role may not see this",
    login_failed: "Sign-in failed: ", not_applicable: "—", state_submitted: "Submitted",
    state_submitted_late: "Submitted late", state_generated: "Generated, not submitted", state_pending: "Pending",
    state_late: "Late", due: "due", no_plan: "No plan for next week yet", status_new: "New",
    status_received: "Received", status_handled: "Handled", overdue: "overdue", deadline: "deadline",
    more: "More…", lang_switch: "中文", base_layer_none: "No base layer", select_unit: "Select an area on the map first",
    high_risk_count: "High-risk children (major/severe)", on_ledger: "Annex 3 ledger",
    helper_pending: "helper proposed, not yet accepted"
  }
};
